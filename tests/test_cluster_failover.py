"""A node killed while clients call through the cluster (docs/cluster.md), on every runtime.

Three nodes on one machine over 127.0.0.1-3 (`--host`, static `--peer`s), one replicated app
deployed on node 1 and copied to the others. Clients call it through the cluster
(`cocaine call --cluster`: a node resolved from node 1, a 503 or a node that does not answer
retried elsewhere) all along, while:
- node 0 is killed with SIGKILL;
- a new version is deployed on node 1 while node 0 is down, and reaches node 2;
- node 0 starts again from its store and catches up (it runs the new version).
No call fails, and node 0 answers calls again at the end.

Nothing sleeps a fixed time: every wait polls with a deadline.
"""

import threading
import time

from cluster_nodes import HOSTS, start_cluster, start_node
from conftest import NativeClient, free_port
from control import cli, cnode, deploy, kill9, ok, versioned_app, wait_state  # noqa: F401


def app(version, app_port):
    manifest = versioned_app(version, {"echo": {"type": "native-server",
                                                "endpoint": "tcp://*:%d" % app_port}},
                             engine={"pool-limit": 2, "pool-min": 1})
    return dict(manifest, version=version, cluster={"replicate": True})


def wait_version(node, version, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        entry = wait_state(node, "reply", timeout=timeout)
        if entry["version"] == version:
            return entry
        assert time.monotonic() < deadline, entry
        time.sleep(0.05)


class Callers:
    """Clients calling through the cluster, one CLI call after another, until stopped."""

    def __init__(self, node, threads=2):
        self.node = node
        self.stop = threading.Event()
        self.calls, self.failed = 0, []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, i):
        n = 0
        while not self.stop.is_set():
            n += 1
            body = "c%d-%d" % (i, n)
            done = cli("call", "reply", body, "--cluster", "--task", "echo", "--timeout", "2",
                       node=self.node.control, timeout=60)
            good = done.returncode == 0 and done.stdout.strip().endswith(":" + body)
            with self.lock:
                self.calls += 1
                if not good:
                    self.failed.append((done.returncode, done.stdout, done.stderr))

    def count(self):
        with self.lock:
            return self.calls

    def wait_calls(self, more, timeout=30.0):
        """Until `more` calls past now have been made."""
        target = self.count() + more
        deadline = time.monotonic() + timeout
        while self.count() < target:
            assert time.monotonic() < deadline, "callers stuck at %d calls" % self.count()
            time.sleep(0.05)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return self.calls, self.failed


def test_clients_do_not_fail_when_a_node_is_killed_and_it_catches_up_when_back(cnode, zctx):
    port, app_port = free_port(), free_port()
    nodes = start_cluster(cnode, port)
    deploy(nodes[1], "reply", app(1, app_port))
    for n in nodes:
        wait_version(n, 1)

    callers = Callers(nodes[1])
    try:
        callers.wait_calls(2)
        store0 = nodes[0].store
        kill9(nodes[0])
        callers.wait_calls(4)
        # While node 0 is down, version 2 goes out from node 1.
        deploy(nodes[1], "reply", app(2, app_port))
        wait_version(nodes[2], 2)
        callers.wait_calls(2)
        nodes[0] = start_node(cnode, 0, port, store=store0)
        wait_version(nodes[0], 2)
        callers.wait_calls(4)
    finally:
        calls, failed = callers.finish()
    assert failed == [], failed
    assert calls >= 12, calls

    # Node 0 is back in the cluster with the new version, and answers.
    client = NativeClient(zctx, "tcp://%s:%d" % (HOSTS[0], app_port))
    try:
        assert client.call("echo", b"hi").body == b"v2:hi"
    finally:
        client.close()
    assert ok(nodes[0], "info")["replication"]["apps"]["reply"]["version"] == 2
