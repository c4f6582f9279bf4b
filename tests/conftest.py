"""End-to-end harness: real `cocaine node` processes, real Python workers, real ZeroMQ clients.

Everything waits for events (a log line, a reply, a process exit) with a deadline; nothing
sleeps a fixed time hoping something happened.

Running side by side: scripts/e2e runs the tests on two pytest-xdist workers
(`--dist loadgroup`, COCAINE_E2E_JOBS). Every test must therefore keep to its own resources:
ports from `free_port()`/`endpoint()` (never a fixed port), folders under `tmp_path`, a store
and control endpoint of its own (the `node` and `cnode` fixtures give both), names made
unique with the worker's pid (as the network namespaces of test_cluster_membership.py). A
test that cannot (a fixed port, a system-wide setting, something machine-global that two
tests at once would disturb) is marked `@pytest.mark.xdist_group("NAME")`; the tests of one
group run on one worker, one after another.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import pytest
import zmq

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "tests" / "apps"
PYTHON_SDK = REPO / "adapters" / "python"
RUNTIMES = [r.strip() for r in os.environ.get("COCAINE_RUNTIMES", "mio,smol").split(",") if r.strip()]

# Message kinds of the native protocol (docs/protocol.md §2).
OPEN, CHUNK, CHOKE, ERROR, CANCEL, PING, PONG = 3, 4, 5, 6, 7, 9, 10


def cocaine_bin():
    path = os.environ.get("COCAINE_BIN") or str(REPO / "target" / "debug" / "cocaine")
    if not os.access(path, os.X_OK):
        pytest.exit("no cocaine binary at %s: run scripts/e2e or set COCAINE_BIN" % path, 2)
    return path


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint():
    return "tcp://127.0.0.1:%d" % free_port()


def app_args(name):
    """The manifest `args` of a test app in tests/apps."""
    return "local://%s" % (APPS / name)


# -- processes ---------------------------------------------------------------------------------


def _proc_stat(pid):
    """(ppid, starttime) of a live, non-zombie process, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; fields follow the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None
    return int(fields[1]), int(fields[19])


def alive(pid, starttime=None):
    """Whether `pid` runs (and is still the process that started at `starttime`)."""
    stat = _proc_stat(pid)
    return stat is not None and (starttime is None or stat[1] == starttime)


def children_of(ppid):
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is not None and stat[0] == ppid:
            out[int(entry)] = stat[1]
    return out


def wait_gone(pid, timeout, starttime=None):
    """Polls until `pid` is gone; returns whether it went within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, starttime):
            return True
        time.sleep(0.02)
    return not alive(pid, starttime)


class Node:
    """A running `cocaine node`: its process, log lines and endpoints."""

    def __init__(self, argv, endpoints, manifests, cwd=None):
        self.argv = argv
        self.endpoints = endpoints
        self.manifests = manifests
        self.lines = []
        self._cond = threading.Condition()
        self._closed = False
        self.workers = {}  # pid -> starttime of every worker seen as the node's child
        self.signalled = False
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            process_group=0,
            cwd=cwd,
        )
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._watching = True
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _watch(self):
        while self._watching:
            self.sample_workers()
            time.sleep(0.05)

    def sample_workers(self):
        for pid, start in children_of(self.pid).items():
            self.workers.setdefault(pid, start)

    @property
    def log(self):
        with self._cond:
            return "\n".join(self.lines)

    def tail(self, n=60):
        with self._cond:
            return "\n".join(self.lines[-n:])

    def wait_for_log(self, pattern, timeout=10.0, start=0):
        """The first log line from index `start` on matching regex `pattern`; fails the test
        if none comes within `timeout` or the node's stderr closes first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            index = start
            while True:
                while index < len(self.lines):
                    if regex.search(self.lines[index]):
                        return self.lines[index]
                    index += 1
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    why = "the node's stderr closed" if self._closed else "timed out"
                    raise AssertionError(
                        "no log line matching %r (%s); log tail:\n%s" % (pattern, why, self.tail())
                    )
                self._cond.wait(remaining)

    def wait_exit(self, timeout):
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return code

    def terminate(self):
        """Sends SIGTERM (after a last look at the node's workers)."""
        self.signalled = True
        if self.proc.poll() is None:
            self.sample_workers()
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout=20.0):
        """SIGTERM, then the exit code (the test fails if the node does not exit in time)."""
        self.terminate()
        code = self.wait_exit(timeout)
        if code is None:
            self.kill()
            raise AssertionError("the node did not exit %.0fs after SIGTERM; log tail:\n%s"
                                 % (timeout, self.tail()))
        return code

    def kill(self):
        """Last resort: kill the node's group and every worker it had."""
        for pid in [self.pid] + list(self.workers):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait(5)

    def leftover_workers(self):
        self._watching = False
        self._watcher.join(1)
        return [pid for pid, start in self.workers.items() if not wait_gone(pid, 1.0, start)]


def problems_after(n):
    """What is wrong with node `n` at the end of a test: it exited by itself, or not with 0
    after SIGTERM (which it gets if it still runs), it panicked, or workers outlived it (they
    are killed)."""
    problems = []
    if n.expect_clean and not n.signalled and n.proc.poll() is not None:
        problems.append("the node exited by itself with code %d; log tail:\n%s"
                        % (n.proc.returncode, n.tail()))
    if n.proc.poll() is None:
        try:
            code = n.stop()
        except AssertionError as e:
            problems.append(str(e))
            code = None
        if code is not None and n.expect_clean and code != 0:
            problems.append("node exited %d after SIGTERM; log tail:\n%s" % (code, n.tail()))
    if "panicked at" in n.log:
        problems.append("the node panicked; log tail:\n%s" % n.tail())
    problems.extend(run_folder_problems(n))
    left = n.leftover_workers()
    if left:
        for pid in left:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        problems.append("worker processes %s outlived the node" % left)
    return problems


def run_folder(pid):
    """The default run folder of the node with this pid."""
    return os.path.join(tempfile.gettempdir(), "cocaine-run-%d" % pid)


def run_folder_problems(n):
    """A node that exited by itself or after a signal it handles removes its run folder; one
    that was killed cannot, so the test removes it."""
    folder = run_folder(n.pid)
    if "--run-dir" in n.argv or not os.path.isdir(folder):
        return []
    shutil.rmtree(folder, ignore_errors=True)
    if n.proc.returncode is not None and n.proc.returncode >= 0:
        return ["the node left its run folder %s behind" % folder]
    return []


@pytest.fixture(scope="session", autouse=True)
def private_tmpdir(tmp_path_factory):
    """A temporary folder of this pytest process (each xdist worker has its own), as TMPDIR
    of everything the tests start. A node sweeps the run folders of dead nodes from its
    temporary folder at start: in a shared /tmp it would sweep the one a test on the other
    worker (or another checkout's tests) has just killed a node to look at. It also keeps
    everything the tests leave in the run's own folder, which scripts/e2e removes."""
    folder = tmp_path_factory.mktemp("tmp")
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    yield folder
    if saved[0] is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved[0]
    tempfile.tempdir = saved[1]


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return request.param


@pytest.fixture
def node(runtime, tmp_path):
    """Factory: `node({"app": manifest_dict, ...})` starts a node with those apps and waits
    until every app is up. `expect_up=False` returns as soon as the node exits instead.
    Each node gets its own store (`n.store`) and control endpoint on a free port (`n.control`),
    so parallel nodes never share the default port or the user's store.

    `sdk_from_repo=False` leaves out `--python-path`, so the node finds the Python SDK by its
    own rule (docs/sdk.md).

    At teardown every node still running is stopped with SIGTERM and must exit 0, and no
    worker process of any node may remain."""
    started = []
    counter = [0]

    def start(apps, expect_up=True, timeout=30.0, extra_args=(), sdk_from_repo=True):
        counter[0] += 1
        folder = tmp_path / ("node%d" % counter[0])
        folder.mkdir()
        paths = []
        for name, manifest in apps.items():
            path = folder / ("%s.json" % name)
            if isinstance(manifest, (str, bytes)):
                path.write_bytes(manifest if isinstance(manifest, bytes) else manifest.encode())
            else:
                path.write_text(json.dumps(manifest, indent=1))
            paths.append(str(path))
        extra_args = list(extra_args)
        # A test may pass its own --store or --control (n.control is then the last one given).
        if "--store" in extra_args:
            store = Path(extra_args[extra_args.index("--store") + 1])
        else:
            store = tmp_path / ("store%d" % counter[0])
            extra_args += ["--store", str(store)]
        if "--control" in extra_args:
            control = extra_args[len(extra_args) - 1 - extra_args[::-1].index("--control") + 1]
        else:
            control = endpoint()
            extra_args += ["--control", control]
        argv = [
            cocaine_bin(), "node", "--log-level", "debug", "--runtime", runtime,
            *(["--python-path", str(PYTHON_SDK)] if sdk_from_repo else []), *extra_args, *paths,
        ]
        n = Node(argv, {}, apps)
        n.store = store
        n.control = control
        n.expect_clean = expect_up
        started.append(n)
        if expect_up:
            n.wait_for_log(r"node is up: every app started", timeout)
        else:
            if n.wait_exit(timeout) is None:
                raise AssertionError("the node did not exit; log tail:\n" + n.tail())
        return n

    yield start

    problems = []
    for n in started:
        problems.extend(problems_after(n))
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def zctx():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


# -- clients -----------------------------------------------------------------------------------


def pack(message):
    return msgpack.packb(message, use_bin_type=True)


def unpack(frame):
    return msgpack.unpackb(frame, raw=False)


class Reply:
    """What a native call got: its chunks and how it ended (`code` None after `[5]`)."""

    def __init__(self, sid):
        self.sid = sid
        self.chunks = []
        self.code = None
        self.message = None
        self.done = False

    @property
    def ok(self):
        return self.done and self.code is None

    @property
    def body(self):
        return b"".join(self.chunks)

    def __repr__(self):
        return "Reply(sid=%d, chunks=%r, code=%r, message=%r, done=%r)" % (
            self.sid, self.chunks[:5], self.code, self.message, self.done)


class NativeClient:
    """A DEALER speaking the native protocol. Messages for other sids than the one awaited
    are kept, so several requests can be in flight on one connection."""

    def __init__(self, ctx, address, timeout=10.0):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        self.sock.connect(address)
        self.timeout = timeout
        self.next_sid = 1
        self.replies = {}
        self.connection_errors = []  # [6, 0, ...] messages
        self.pongs = []

    def close(self):
        self.sock.close(0)

    def sid(self):
        sid = self.next_sid
        self.next_sid += 1
        return sid

    def open(self, event, policy=None, sid=None):
        sid = self.sid() if sid is None else sid
        self.replies[sid] = Reply(sid)
        self.sock.send(pack([OPEN, sid, event, policy or {}, None]))
        return sid

    def chunk(self, sid, data):
        self.sock.send(pack([CHUNK, sid, data]))

    def end(self, sid):
        self.sock.send(pack([CHOKE, sid]))

    def cancel(self, sid):
        self.sock.send(pack([CANCEL, sid]))

    def send_call(self, event, body=b"", policy=None, sid=None):
        """A one-shot request as three frames of one multipart message; returns its sid."""
        sid = self.sid() if sid is None else sid
        self.replies[sid] = Reply(sid)
        self.sock.send_multipart([
            pack([OPEN, sid, event, policy or {}, None]),
            pack([CHUNK, sid, body]),
            pack([CHOKE, sid]),
        ])
        return sid

    def send_raw(self, *frames):
        self.sock.send_multipart(list(frames))

    def recv(self, timeout=None):
        """One multipart message, as decoded protocol messages (the delimiter dropped)."""
        self.sock.setsockopt(zmq.RCVTIMEO, int((timeout or self.timeout) * 1000))
        try:
            frames = self.sock.recv_multipart()
        except zmq.Again:
            raise TimeoutError("no message from the node within %.1fs" % (timeout or self.timeout))
        return [unpack(f) for f in frames if f]

    def pump(self, timeout=None):
        """Receives one multipart message and files its messages under their sids."""
        messages = self.recv(timeout)
        for m in messages:
            self.file(m)
        return messages

    def file(self, m):
        kind, sid = m[0], m[1]
        if kind == PONG:
            self.pongs.append(sid)
            return
        if kind == ERROR and sid == 0:
            self.connection_errors.append(m)
            return
        reply = self.replies.setdefault(sid, Reply(sid))
        if reply.done:
            raise AssertionError("a message after the terminal one for sid %d: %r" % (sid, m))
        if kind == CHUNK:
            reply.chunks.append(m[2])
        elif kind == CHOKE:
            reply.done = True
        elif kind == ERROR:
            reply.done, reply.code, reply.message = True, m[2], m[3]
        else:
            raise AssertionError("unexpected message from the node: %r" % (m,))

    def wait(self, sid, timeout=None):
        """The reply of `sid` once it has ended."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.replies[sid].done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("sid %d not answered: %r" % (sid, self.replies[sid]))
            self.pump(remaining)
        return self.replies[sid]

    def wait_chunks(self, sid, n, timeout=None):
        """Waits until `sid` has at least `n` reply chunks (or has ended)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        reply = self.replies[sid]
        while len(reply.chunks) < n and not reply.done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("sid %d: %d chunks of %d: %r" % (sid, len(reply.chunks), n, reply))
            self.pump(remaining)
        return reply

    def wait_connection_error(self, timeout=None):
        """The next `[6, 0, code, message]`."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = len(self.connection_errors)
        while len(self.connection_errors) == seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no connection error came")
            self.pump(remaining)
        return self.connection_errors[seen]

    def ping(self, token, timeout=None):
        """Sends `[9, token]` and waits for its pong: the node has read all sent before."""
        self.sock.send(pack([PING, token]))
        deadline = time.monotonic() + (timeout or self.timeout)
        while token not in self.pongs:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no pong for %d" % token)
            self.pump(remaining)

    def call(self, event, body=b"", policy=None, timeout=None):
        return self.wait(self.send_call(event, body, policy), timeout)


def req_socket(ctx, address, timeout=10.0):
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.connect(address)
    return sock


def recv_multipart(sock, timeout):
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    try:
        return sock.recv_multipart()
    except zmq.Again:
        raise TimeoutError("nothing received within %.1fs" % timeout)


class Subscriber:
    """A SUB on an app's pubsub with prefix subscriptions; yields (envelope words, value)."""

    def __init__(self, ctx, address, *prefixes):
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        for prefix in prefixes or ("",):
            self.sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.sock.connect(address)

    def recv(self, timeout=5.0):
        frames = recv_multipart(self.sock, timeout)
        assert len(frames) == 2, "a publication has two frames, got %r" % (frames,)
        envelope = frames[0].decode()
        return envelope.split(" "), json.loads(frames[1])

    def wait_for(self, predicate, timeout=10.0):
        """The first publication for which `predicate(words, value)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching publication within %.1fs" % timeout)
            words, value = self.recv(remaining)
            if predicate(words, value):
                return words, value

    def close(self):
        self.sock.close(0)


def python_app(app_file, tasks, engine=None, pubsub=None):
    """A manifest for a Python app in tests/apps."""
    manifest = {"type": "python", "args": app_args(app_file), "tasks": tasks}
    # COCAINE_E2E_FORK_SERVER=1 runs every Python app with a fork server unless its test
    # says otherwise (to try fork servers under the whole suite's accounting).
    if os.environ.get("COCAINE_E2E_FORK_SERVER") == "1":
        engine = dict({"fork-server": True}, **(engine or {}))
    if engine:
        manifest["engine"] = engine
    if pubsub:
        manifest["pubsub"] = {"endpoint": pubsub, "interval": 1000} if isinstance(pubsub, str) else pubsub
    return manifest
