"""Discovery and membership (docs/cluster.md), end to end on every runtime.

- Three nodes on one machine over 127.0.0.1/2/3 (`--host`, every endpoint `tcp://*:PORT`),
  each a static peer (`--peer`) of the others: they see each other and each other's apps
  (`peers`, `cocaine peers`), call each other's apps at the announced endpoints, and forget a
  node killed with SIGKILL after three silent announcement intervals.
- Datagrams sent with Python's socket (garbage, truncated, oversized, stale, forged with the
  node's own id) are dropped and counted; the node keeps serving.
- Multicast discovery between two nodes on one machine, and between two network namespaces
  the test makes (skipped with the reason when namespaces cannot be made here).

Nothing sleeps a fixed time: every wait polls `peers` (or a log line) with a deadline.
"""

import json
import os
import shutil
import socket
import subprocess
import time

import msgpack
import pytest

from conftest import PYTHON_SDK, Node, NativeClient, cocaine_bin, free_port, problems_after
from cluster_nodes import HOSTS, INTERVAL_MS, by_id, start_cluster, wait_peers
from control import cli, cnode, deploy, kill9, ok, versioned_app  # noqa: F401 (cnode: a fixture)


def peers_of(node):
    return ok(node, "peers")


def test_static_peers_see_each_other_and_forget_a_dead_node(cnode, tmp_path, zctx):
    port, app_port = free_port(), free_port()
    nodes = start_cluster(cnode, port)
    # One manifest for the whole cluster: the endpoint's host is `*`, --host places it.
    manifest = versioned_app(1, {"echo": {"type": "native-server",
                                          "endpoint": "tcp://*:%d" % app_port}},
                             manifest_version=3)
    for n in nodes:
        deploy(n, "reply", manifest)

    ids = ["node-%d" % i for i in range(3)]
    for i, n in enumerate(nodes):
        others = [x for x in ids if x != ids[i]]

        def sees_all(reply, others=others):
            peers = by_id(reply)
            return sorted(peers) == others and all(
                peers[o]["apps"].get("reply", {}).get("state") == "running" for o in others)

        reply = wait_peers(n, sees_all, "node %d to see %s running reply" % (i, others))
        assert reply["node_id"] == ids[i] and reply["control"] == n.control, reply
        for j, other in enumerate(ids):
            if j == i:
                continue
            peer = by_id(reply)[other]
            assert peer["control"] == "tcp://%s:%d" % (HOSTS[j], port), peer
            app = peer["apps"]["reply"]
            assert app["version"] == 3, app
            endpoint = app["tasks"]["echo"]
            assert endpoint == "tcp://%s:%d" % (HOSTS[j], app_port), app
            assert app["pool_limit"] >= 1 and app["queue_limit"] >= 1, app
            assert 0 <= app["busy"] <= app["workers"] <= app["pool_limit"], app
            # The announced endpoint is real: the peer's app answers there.
            client = NativeClient(zctx, endpoint)
            try:
                assert client.call("echo", b"hi").body == b"v1:hi"
            finally:
                client.close()
        assert reply["stats"]["malformed"] == 0, reply["stats"]

    # The CLI prints the same, as a table and as JSON.
    table = cli("peers", node=nodes[0].control)
    assert table.returncode == 0, table.stderr
    assert "node-1" in table.stdout and "node-2" in table.stdout, table.stdout
    assert "reply" in table.stdout and "running" in table.stdout, table.stdout
    as_json = cli("peers", "--json", node=nodes[0].control)
    assert as_json.returncode == 0, as_json.stderr
    assert sorted(by_id(json.loads(as_json.stdout))) == ["node-1", "node-2"], as_json.stdout

    # node-2 dies without a word: the others forget it after three silent intervals, and
    # still see each other.
    kill9(nodes[2])
    for n, other in [(nodes[0], "node-1"), (nodes[1], "node-0")]:
        reply = wait_peers(n, lambda r, other=other: sorted(by_id(r)) == [other],
                           "node-2 to be forgotten")
        assert reply["stats"]["forgotten"] >= 1, reply["stats"]
        n.wait_for_log(r"forgot peer node-2 .*silent for 3 announcement intervals")


def announcement(node_id, seq, apps=None, control="tcp://127.0.0.9:5000", sig=None):
    return msgpack.packb([1, node_id, seq, control, apps or {}, sig], use_bin_type=True)


def test_garbage_and_forged_datagrams_are_dropped_and_counted(cnode, zctx):
    port, app_port = free_port(), free_port()
    # A static peer nobody runs: the node opens its UDP socket on its control port.
    n = cnode(control="tcp://127.0.0.1:%d" % port, extra_args=[
        "--peer", "tcp://127.0.0.2:%d" % free_port(), "--announce-interval", str(INTERVAL_MS),
        "--node-id", "target"])
    deploy(n, "reply", versioned_app(1, {"echo": {"type": "native-server",
                                                  "endpoint": "tcp://127.0.0.1:%d" % app_port}}))
    app = {"version": 1, "hash": "", "tasks": {"t": "tcp://*:1"}, "queue": 0, "busy": 0,
           "workers": 0, "pool_limit": 1, "queue_limit": 1, "state": "running"}
    good = announcement("visitor", 10, {"x": app})
    bad = [
        b"",
        b"\xff" * 40,
        b"hello, cocaine",
        good[:-3],                                       # truncated
        bytes(60000),                                    # oversized junk of zeros
        announcement("visitor", 11, {"x": dict(app, busy=5)}),   # more busy than workers
        announcement("bad id!", 1),                      # an id breaking the rules
        msgpack.packb([2, "visitor", 1, "tcp://x:1", {}, None]),  # unknown kind
        msgpack.packb({"not": "an array"}),
    ]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for datagram in bad:
            sock.sendto(datagram, ("127.0.0.1", port))
        stats = wait_peers(n, lambda r: r["stats"]["malformed"] == len(bad),
                           "every bad datagram to be counted")["stats"]
        assert stats["accepted"] == 0 and peers_of(n)["peers"] == [], stats

        # A good one from a node that does not exist, then its replay, and one forged with
        # the target's own id: the first is taken, the others dropped and counted.
        sock.sendto(good, ("127.0.0.1", port))
        reply = wait_peers(n, lambda r: "visitor" in by_id(r), "the visitor to be taken in")
        visitor = by_id(reply)["visitor"]
        assert visitor["control"] == "tcp://127.0.0.9:5000", visitor
        assert visitor["apps"]["x"]["tasks"]["t"] == "tcp://127.0.0.1:1", "wildcard resolved"
        sock.sendto(good, ("127.0.0.1", port))
        sock.sendto(announcement("target", 2 ** 62), ("127.0.0.1", port))
        stats = wait_peers(n, lambda r: r["stats"]["stale"] == 1 and r["stats"]["own"] == 1,
                           "the replay and the forgery to be counted")["stats"]
        assert stats["accepted"] == 1 and stats["malformed"] == len(bad), stats
        assert stats["received"] == len(bad) + 3, stats
    finally:
        sock.close()

    # The node kept serving all along, and forgets the visitor, who says no more.
    client = NativeClient(zctx, "tcp://127.0.0.1:%d" % app_port)
    try:
        assert client.call("echo", b"still").body == b"v1:still"
    finally:
        client.close()
    wait_peers(n, lambda r: r["peers"] == [], "the silent visitor to be forgotten")
    n.wait_for_log(r"dropped a malformed announcement from 127\.0\.0\.1:\d+")
    assert "panicked" not in n.log


def test_multicast_on_one_machine(cnode):
    """Two nodes on 127.0.0.2 and 127.0.0.3 join one group (on the loopback interface, by
    --host) and hear each other with no peer named."""
    port = free_port()
    group = "239.192.74.66:%d" % free_port()
    nodes = []
    for i, host in enumerate(["127.0.0.2", "127.0.0.3"]):
        n = cnode(control="tcp://*:%d" % port, extra_args=[
            "--host", host, "--discovery", "multicast=" + group,
            "--announce-interval", str(INTERVAL_MS), "--node-id", "mc-%d" % i])
        n.control = "tcp://%s:%d" % (host, port)
        nodes.append(n)
    for i, n in enumerate(nodes):
        other = "mc-%d" % (1 - i)
        reply = wait_peers(n, lambda r, other=other: other in by_id(r), "%s by multicast" % other)
        assert reply["discovery"] == {"multicast": group, "peers": [],
                                      "interval_ms": INTERVAL_MS, "registry": False,
                                      "auth": "off"}, reply
        assert by_id(reply)[other]["control"] == nodes[1 - i].control, reply


# -- multicast between network namespaces ------------------------------------------------------


def sh(*argv, check=True):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=check, timeout=30)


@pytest.fixture
def two_namespaces():
    """Two network namespaces joined by a veth pair (10.77.x.1 and 10.77.x.2), made and
    removed by the test; skips the test when they cannot be made here."""
    if shutil.which("ip") is None:
        pytest.skip("multicast test: the `ip` command (iproute2) is not installed")
    tag = "cmb%d" % os.getpid()
    names = [tag + "a", tag + "b"]
    subnet = 1 + os.getpid() % 250
    addresses = ["10.77.%d.1" % subnet, "10.77.%d.2" % subnet]
    made = []
    try:
        for name in names:
            done = sh("ip", "netns", "add", name, check=False)
            if done.returncode != 0:
                pytest.skip("multicast test: cannot make a network namespace here (needs root "
                            "and CAP_SYS_ADMIN): %s" % done.stderr.strip())
            made.append(name)
        veth = [tag + "x", tag + "y"]
        sh("ip", "link", "add", veth[0], "netns", names[0], "type", "veth",
           "peer", "name", veth[1], "netns", names[1])
        for name, dev, address in zip(names, veth, addresses):
            sh("ip", "-n", name, "link", "set", "lo", "up")
            sh("ip", "-n", name, "addr", "add", address + "/24", "dev", dev)
            sh("ip", "-n", name, "link", "set", dev, "up")
        yield names, addresses
    finally:
        for name in made:
            sh("ip", "netns", "del", name, check=False)


def test_multicast_discovery_between_namespaces(runtime, tmp_path, two_namespaces):
    names, addresses = two_namespaces
    port = free_port()
    group = "239.192.74.66:%d" % free_port()
    nodes = []
    try:
        for i, (ns, address) in enumerate(zip(names, addresses)):
            argv = ["ip", "netns", "exec", ns, cocaine_bin(), "node", "--runtime", runtime,
                    "--python-path", str(PYTHON_SDK), "--store", str(tmp_path / ("s%d" % i)),
                    "--control", "tcp://*:%d" % port, "--host", address,
                    "--discovery", "multicast=" + group, "--announce-interval", str(INTERVAL_MS),
                    "--node-id", "ns-node-%d" % i,
                    # A control endpoint off loopback requires signed requests by default;
                    # this test is about discovery, not auth.
                    "--auth", "off"]
            n = Node(argv, {}, {})
            n.expect_clean = True
            nodes.append(n)
            n.wait_for_log(r"node is up: every app started", 30)
            n.wait_for_log(r"multicast discovery socket is up", 10)
        for i, (ns, address) in enumerate(zip(names, addresses)):
            other = "ns-node-%d" % (1 - i)
            deadline = time.monotonic() + 20
            while True:
                done = sh("ip", "netns", "exec", ns, cocaine_bin(), "peers", "--json",
                          "--node", "tcp://%s:%d" % (address, port), check=False)
                assert done.returncode == 0, done.stderr
                reply = json.loads(done.stdout)
                if other in by_id(reply):
                    break
                assert time.monotonic() < deadline, (
                    "ns-node-%d never heard %s by multicast: %s\nlog tail:\n%s"
                    % (i, other, done.stdout, nodes[i].tail(30)))
                time.sleep(0.1)
            peer = by_id(reply)[other]
            assert peer["control"] == "tcp://%s:%d" % (addresses[1 - i], port), peer
            assert reply["discovery"]["multicast"] == group, reply
    finally:
        problems = []
        for n in nodes:
            problems.extend(problems_after(n))
        assert not problems, "\n\n".join(problems)
