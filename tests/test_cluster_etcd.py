"""etcd discovery (docs/cluster.md, "etcd"), end to end on every runtime, with a real etcd.

The test starts its own etcd (Debian's `etcd-server`, installed by scripts/e2e) on loopback
ports that were free, with a data folder under the test's temporary folder, and stops it at
the end. Three nodes over 127.0.0.1-3 (`--host`), each given only `--etcd`:

- they find each other through etcd (`cocaine peers` shows source `registry`);
- a replicated app deployed on node 0 runs on nodes 1 and 2 and answers through node 1; its
  record is in etcd under `<prefix>apps/echo`; deleted on node 2, it leaves every node and
  etcd holds its tombstone;
- etcd is killed and started again on the same data folder while the nodes run: the app
  keeps answering, and membership comes back (every node lists both others again);
- a node killed with SIGKILL: its member key goes with its lease, and `peers` stops listing it;
- garbage under the prefix is dropped, counted and logged; the nodes serve on.

Nothing sleeps a fixed time: every wait polls with a deadline.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import NativeClient, free_port
from control import (PACKAGED, PACKAGED_GREETING, cli, cnode, deploy, kill9, ok,  # noqa: F401
                     packaged_manifest, tar_package, wait_absent, wait_state)

INTERVAL_MS = 200
HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
PREFIX = "/cocaine-test/"


class Etcd:
    """A real etcd on loopback: started, killed and started again on one data folder."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.client_port = free_port()
        self.peer_port = free_port()
        self.url = "http://127.0.0.1:%d" % self.client_port
        self.proc = None
        self.log_path = data_dir.parent / "etcd.log"

    def start(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        argv = [
            "etcd", "--name", "test", "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "test=" + peer,
        ]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     process_group=0)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if json.load(r).get("health") == "true":
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("etcd did not start:\n" + self.log_path.read_text()[-3000:])
            time.sleep(0.05)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def _post(self, path, body):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as r:
            return json.load(r)

    def keys(self, prefix):
        """{key: value bytes} under `prefix`, through etcd's JSON gateway."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        reply = self._post("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
                for kv in reply.get("kvs", [])}

    def put(self, key, value):
        self._post("/v3/kv/put", {"key": b64(key), "value": base64.b64encode(value).decode()})


def b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def etcd(tmp_path):
    if shutil.which("etcd") is None:
        pytest.fail("no etcd binary: scripts/e2e installs etcd-server")
    server = Etcd(tmp_path / "etcd-data")
    server.start()
    yield server
    server.kill()


def wait_until(what, predicate, timeout=30.0, log=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s%s"
                                 % (what, "\n" + log() if log else ""))
        time.sleep(0.05)


def peer_ids(node):
    return sorted(p["node_id"] for p in ok(node, "peers")["peers"])


def start_node(cnode, etcd, i, port, store=None):
    n = cnode(store=store, control="tcp://*:%d" % port, extra_args=[
        "--host", HOSTS[i], "--announce-interval", str(INTERVAL_MS), "--node-id", "node-%d" % i,
        "--etcd", etcd.url, "--etcd-prefix", PREFIX])
    n.control = "tcp://%s:%d" % (HOSTS[i], port)
    return n


def wait_peers(node, want, what):
    return wait_until(what, lambda: peer_ids(node) == want, log=lambda: node.tail(30))


def call(zctx, endpoint, body):
    client = NativeClient(zctx, endpoint)
    try:
        return client.call("hello", body).body
    finally:
        client.close()


def test_a_cluster_through_etcd(cnode, etcd, zctx):
    port, echo_port = free_port(), free_port()
    nodes = [start_node(cnode, etcd, i, port) for i in range(3)]
    ids = ["node-%d" % i for i in range(3)]
    for i, n in enumerate(nodes):
        wait_peers(n, [x for x in ids if x != ids[i]], "both peers through etcd")
    listing = ok(nodes[0], "peers")
    assert {p["source"] for p in listing["peers"]} == {"registry"}, listing
    assert listing["discovery"]["registry"] is True, listing
    assert listing["stats"]["malformed"] == 0, listing["stats"]
    assert sorted(etcd.keys(PREFIX + "members/")) == [PREFIX + "members/" + x for x in ids]
    table = cli("peers", node=nodes[0].control)
    assert table.returncode == 0 and ": etcd, every 200 ms" in table.stdout, table.stdout

    # A replicated app deployed on node 0 runs on 1 and 2, and answers through node 1.
    package = tar_package(PACKAGED)
    echo = dict(packaged_manifest("tcp://*:%d" % echo_port), version=1,
                cluster={"replicate": True})
    deploy(nodes[0], "echo", echo, package)
    for n in nodes[1:]:
        assert wait_state(n, "echo", timeout=30.0)["version"] == 1
    assert call(zctx, "tcp://%s:%d" % (HOSTS[1], echo_port), b"B") == PACKAGED_GREETING + b", B!"
    record = wait_until("echo's record in etcd",
                        lambda: etcd.keys(PREFIX + "apps/").get(PREFIX + "apps/echo"))
    record = json.loads(record)
    assert record["version"] == 1 and record["state"] == "live", record
    assert record["hash"] == ok(nodes[0], "info")["replication"]["apps"]["echo"]["hash"]

    # Garbage under the prefix: dropped, counted, logged; everything goes on.
    etcd.put(PREFIX + "members/intruder", b"\xc1 not msgpack")
    etcd.put(PREFIX + "members/" + "x" * 100, b"")
    etcd.put(PREFIX + "apps/web", b"{" * 10_000)
    for n in nodes:
        n.wait_for_log(r"etcd: dropped the value at .*/members/intruder")
        n.wait_for_log(r"etcd: dropped the value at .*/apps/web")
    assert peer_ids(nodes[0]) == ["node-1", "node-2"]

    # Deleted on node 2: it leaves every node, and etcd keeps the tombstone.
    assert ok(nodes[2], "delete", app="echo") == {"app": "echo"}
    for n in nodes[:2]:
        wait_absent(n, "echo", timeout=30.0)
    record = wait_until("echo's tombstone in etcd", lambda: json.loads(
        etcd.keys(PREFIX + "apps/")[PREFIX + "apps/echo"])["state"] == "deleted")

    # etcd restarts while the nodes run: they serve on, and membership comes back.
    deploy(nodes[1], "echo", dict(echo, version=2), package)
    for n in (nodes[0], nodes[2]):
        wait_until("echo v2", lambda n=n: any(e["app"] == "echo" and e["version"] == 2
                                              and e["state"] == "running"
                                              for e in ok(n, "list")))
    marks = [len(n.lines) for n in nodes]
    etcd.kill()
    for n, mark in zip(nodes, marks):
        n.wait_for_log(r"etcd \(http://127\.0\.0\.1:\d+\): .*the node serves on", start=mark)
    for i in range(3):
        assert call(zctx, "tcp://%s:%d" % (HOSTS[i], echo_port), b"E") == \
            PACKAGED_GREETING + b", E!"
    etcd.start()
    for n, mark in zip(nodes, marks):
        n.wait_for_log(r"etcd: connected again", start=mark, timeout=30.0)
    for i, n in enumerate(nodes):
        wait_peers(n, [x for x in ids if x != ids[i]], "both peers after etcd's restart")
    assert call(zctx, "tcp://%s:%d" % (HOSTS[2], echo_port), b"F") == PACKAGED_GREETING + b", F!"

    # node 2 is killed: its key goes with its lease, and the others stop listing it.
    kill9(nodes[2])
    wait_until("node-2's member key to expire",
               lambda: PREFIX + "members/node-2" not in etcd.keys(PREFIX + "members/"),
               timeout=20.0)
    for n, other in [(nodes[0], "node-1"), (nodes[1], "node-0")]:
        wait_peers(n, [other], "node-2 to be forgotten")

    # node 1 stops cleanly: it revokes its lease, so node 0 hears it left at once.
    mark = len(nodes[0].lines)
    assert nodes[1].stop() == 0
    assert PREFIX + "members/node-1" not in etcd.keys(PREFIX + "members/")
    nodes[0].wait_for_log(r"forgot peer node-1: the registry says it left", start=mark)
    for n in nodes:
        assert "panicked" not in n.log


def test_a_node_starts_and_serves_while_etcd_is_down(cnode, tmp_path, zctx):
    port, app_port = free_port(), free_port()
    etcd = Etcd(tmp_path / "etcd-data")  # not started yet
    n = start_node(cnode, etcd, 0, port)
    n.wait_for_log(r"etcd \(http://127\.0\.0\.1:\d+\): cannot read the app registry at start")
    n.wait_for_log(r"etcd \(http://127\.0\.0\.1:\d+\): .*the node serves on")
    deploy(n, "echo", dict(packaged_manifest("tcp://*:%d" % app_port), version=1),
           tar_package(PACKAGED))
    assert call(zctx, "tcp://%s:%d" % (HOSTS[0], app_port), b"A") == PACKAGED_GREETING + b", A!"
    try:
        etcd.start()
        n.wait_for_log(r"etcd: connected again", timeout=30.0)
        wait_until("the member key", lambda: PREFIX + "members/node-0" in
                   etcd.keys(PREFIX + "members/"))
    finally:
        n.stop()
        etcd.kill()


def test_a_node_restarting_alone_takes_the_tombstones_in_etcd(cnode, etcd, zctx):
    port, app_port = free_port(), free_port()
    n = start_node(cnode, etcd, 0, port)
    echo = dict(packaged_manifest("tcp://*:%d" % app_port), version=1,
                cluster={"replicate": True})
    deploy(n, "echo", echo, tar_package(PACKAGED))
    wait_until("echo's record in etcd",
               lambda: PREFIX + "apps/echo" in etcd.keys(PREFIX + "apps/"))
    store = n.store
    assert n.stop() == 0
    # Deleted elsewhere while this node was down, by a node that is gone now too: only etcd
    # remembers.
    etcd.put(PREFIX + "apps/echo", json.dumps({
        "app": "echo", "version": 1, "hash": "", "state": "deleted",
        "deleted_at": 1_700_000_000_000}).encode())
    n = start_node(cnode, etcd, 0, port, store=store)
    n.wait_for_log(r"etcd: 1 tombstones in the registry")
    n.wait_for_log(r"echo: version 1 was deleted in the cluster; not started")
    assert all(e["app"] != "echo" for e in ok(n, "list")), ok(n, "list")
    info = ok(n, "info")["replication"]["apps"]["echo"]
    assert info["version"] == 1 and "deleted_at" in info, info
    wait_until("echo to leave the store", lambda: not (store / "apps" / "echo").exists())
