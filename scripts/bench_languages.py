"""The measuring half of scripts/bench-languages (run through it: it builds and sets up).

For each language: a release `cocaine node` with one app (the language's echo example,
`pool-min` = `pool-limit` = 2, `concurrency` 1, a native-server), warmed up for 1 s, then
`--clients` threads with a DEALER each make one echo call after another (64-byte body) for
`--seconds`. CPU is user + system time from /proc of the node and of its worker children,
read before and after the measured window. Spawn-to-ready is the time from starting a worker
process to its handshake on a fake node's socket (the conformance kit's), median of 10.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import zmq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "adapters" / "conformance"))
from cocaine_conformance.fakenode import FakeNode  # noqa: E402

RELEASE = REPO / "target" / "release"
APPS = REPO / "manifests" / "apps"
TICKS = os.sysconf("SC_CLK_TCK")

# name -> (manifest type, args path, worker argv for spawn-to-ready)
LANGUAGES = {
    "rust": ("binary", RELEASE / "cocaine-echo-worker", [str(RELEASE / "cocaine-echo-worker")]),
    "python": ("python", APPS / "echo.py",
               ["python3", "-m", "cocaine.worker", str(APPS / "echo.py")]),
    "javascript": ("javascript", APPS / "echo.js",
                   ["node", str(REPO / "adapters/javascript/bin/cocaine-worker.js"),
                    str(APPS / "echo.js")]),
    "perl": ("perl", APPS / "echo.pl",
             ["perl", str(REPO / "adapters/perl/bin/cocaine-worker-perl"), str(APPS / "echo.pl")]),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid, "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def cpu_of(node_pid):
    """(node CPU s, {worker pid: CPU s})."""
    workers = {}
    for pid in children(node_pid):
        try:
            workers[pid] = cpu_seconds(pid)
        except OSError:
            pass
    return cpu_seconds(node_pid), workers


class Node:
    def __init__(self, kind, args, workdir):
        self.endpoint = "tcp://127.0.0.1:%d" % free_port()
        manifest = {
            "type": kind, "args": "local://%s" % args,
            "engine": {"pool-limit": 2, "pool-min": 2, "concurrency": 1, "queue-limit": 1000},
            "tasks": {"echo": {"type": "native-server", "endpoint": self.endpoint}},
        }
        path = Path(workdir) / "bench.json"
        path.write_text(json.dumps(manifest))
        env = dict(os.environ, PYTHONPATH=str(REPO / "adapters" / "python"))
        self.proc = subprocess.Popen(
            [str(RELEASE / "cocaine"), "node", "--control", "none", "--store",
             str(Path(workdir) / "store"), "--log-level", "info", str(path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 30
        for line in self.proc.stderr:
            if b"node is up" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the node did not come up")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load(ctx, endpoint, seconds, clients, body):
    """Runs `clients` threads of back-to-back calls; returns (calls ok, errors)."""
    stop = time.monotonic() + seconds
    counts = []

    def client():
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 10000)
        sock.connect(endpoint)
        ok = errors = 0
        sid = 0
        while time.monotonic() < stop:
            sid += 1
            sock.send_multipart([msgpack.packb([3, sid, "echo", {}, None]),
                                 msgpack.packb([4, sid, body]), msgpack.packb([5, sid])])
            done = False
            while not done:
                for frame in sock.recv_multipart():
                    if not frame:
                        continue
                    kind = msgpack.unpackb(frame)[0]
                    if kind == 5:
                        ok += 1
                        done = True
                    elif kind == 6:
                        errors += 1
                        done = True
        sock.close(0)
        counts.append((ok, errors))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def spawn_to_ready(argv, runs=10):
    """Medians of (wall s, worker CPU s) from starting the worker to its handshake."""
    times, cpu = [], []
    for _ in range(runs):
        node = FakeNode(argv, env={"PYTHONPATH": str(REPO / "adapters" / "python")},
                        cwd=str(APPS))
        try:
            node.accept(timeout=10)
            times.append(time.monotonic() - node.started)
            cpu.append(cpu_seconds(node.proc.pid))
        finally:
            node.close()
    return statistics.median(times), statistics.median(cpu)


def measure(name, seconds, clients):
    kind, args, argv = LANGUAGES[name]
    workdir = tempfile.mkdtemp(prefix="cocaine-bench-")
    ctx = zmq.Context()
    node = Node(kind, args, workdir)
    try:
        body = b"x" * 64
        load(ctx, node.endpoint, 1.0, clients, body)  # warm-up: workers up, caches warm
        node_before, workers_before = cpu_of(node.proc.pid)
        started = time.monotonic()
        ok, errors = load(ctx, node.endpoint, seconds, clients, body)
        elapsed = time.monotonic() - started
        node_after, workers_after = cpu_of(node.proc.pid)
    finally:
        node.stop()
        ctx.destroy(0)
        shutil.rmtree(workdir, ignore_errors=True)
    worker_cpu = sum(workers_after[p] - workers_before.get(p, 0.0) for p in workers_after)
    row = {
        "language": name,
        "rps": ok / elapsed,
        "errors": errors,
        "node_us": (node_after - node_before) / ok * 1e6,
        "worker_us": worker_cpu / ok * 1e6,
    }
    spawn_s, spawn_cpu_s = spawn_to_ready(argv)
    row.update(spawn_ms=spawn_s * 1000, spawn_cpu_ms=spawn_cpu_s * 1000)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("languages", nargs="*", default=list(LANGUAGES))
    args = parser.parse_args()
    rows = [measure(name, args.seconds, args.clients) for name in args.languages]
    python = next((r for r in rows if r["language"] == "python"), None)
    with open("/proc/loadavg") as f:
        load_average = f.read().split()[0]
    print("%d clients, %.0f s, 2 workers, load average %s at the end"
          % (args.clients, args.seconds, load_average))
    print()
    print("| worker | echo calls/s | node CPU µs/call | worker CPU µs/call | "
          "calls/s vs Python | spawn-to-ready ms (CPU ms) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = "%.2f" % (r["rps"] / python["rps"]) if python else "-"
        print("| %s | %s | %.0f | %.0f | %s | %.0f (%.0f) |" % (
            r["language"], format(round(r["rps"]), ","), r["node_us"], r["worker_us"], ratio,
            r["spawn_ms"], r["spawn_cpu_ms"]))
        if r["errors"]:
            print("(%s: %d calls failed)" % (r["language"], r["errors"]))
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
