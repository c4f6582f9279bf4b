"""Balancing by load (docs/cluster.md, "How balancing chooses"), end to end on every runtime.

Three nodes on one machine over 127.0.0.1/2/3 (`--host`, static `--peer`s), one app on each:
- `resolve` on any node names all three, with each task's reachable endpoint and the load;
- `cocaine call APP --cluster` spreads calls over the nodes;
- with two nodes' queues full, every call is answered by the third (a full node is left out
  by its announced load, or its 503 is retried elsewhere): no call fails;
- a node killed with SIGKILL: calls still succeed (a silent node is left for another), and
  once the others forget it `resolve` no longer names it.

Nothing sleeps a fixed time: every wait polls with a deadline.
"""

import re
import time

from cluster_nodes import HOSTS, by_id, start_cluster, wait_peers
from conftest import NativeClient, app_args, free_port
from control import cli, cnode, ctl, deploy, kill9, ok  # noqa: F401 (cnode: a fixture)

ANSWERED = re.compile(r"answered by (node-\d) at (\S+)")
HOLD_SECONDS = b"15"


def sleeper(app_port):
    """tests/apps/basic.py: one worker, ready at start, and room for one request in the queue."""
    return {"type": "python", "args": app_args("basic.py"),
            "engine": {"pool-limit": 1, "pool-min": 1, "queue-limit": 1},
            "tasks": {"sleep": {"type": "native-server", "endpoint": "tcp://*:%d" % app_port}}}


def cluster_call(node, *extra, timeout="10"):
    done = cli("call", "basic", "0", "--cluster", "--task", "sleep", "--timeout", timeout,
               *extra, node=node.control)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "slept\n", done.stdout
    answered = ANSWERED.search(done.stderr)
    assert answered, done.stderr
    return answered.group(1), answered.group(2)


def running_everywhere(nodes):
    for i, n in enumerate(nodes):
        others = ["node-%d" % j for j in range(len(nodes)) if j != i]
        wait_peers(n, lambda r, others=others: all(
            by_id(r).get(o, {}).get("apps", {}).get("basic", {}).get("state") == "running"
            for o in others), "node %d to see basic running everywhere" % i)


def test_calls_spread_avoid_full_nodes_and_survive_a_dead_one(cnode, tmp_path, zctx):
    port, app_port = free_port(), free_port()
    nodes = start_cluster(cnode, port)
    for n in nodes:
        deploy(n, "basic", sleeper(app_port))
    running_everywhere(nodes)

    # resolve: every node, this one first, each endpoint reachable as given.
    resolved = ok(nodes[0], "resolve", app="basic")
    entries = resolved["nodes"]
    assert [e["node_id"] for e in entries][:1] == ["node-0"], resolved
    assert sorted(e["node_id"] for e in entries) == ["node-0", "node-1", "node-2"], resolved
    endpoints = {e["node_id"]: e["tasks"]["sleep"] for e in entries}
    for i, host in enumerate(HOSTS[:3]):
        assert endpoints["node-%d" % i] == "tcp://%s:%d" % (host, app_port), resolved
    for e in entries:
        assert e["state"] == "running" and e["pool_limit"] == 1 and e["queue_limit"] == 1, e
    bad = ctl(nodes[1], "resolve", app="nothing-here")
    assert bad["error"]["code"] == 404, bad

    # Idle nodes, equal loads: the calls spread.
    answered_by = {cluster_call(nodes[0])[0] for _ in range(12)}
    assert len(answered_by) >= 2, answered_by

    # The balancing benchmark runs against the same cluster and reports both choices (its
    # figures are not checked here: speed belongs to benchmarks, not tests).
    done = cli("bench", "balance", "basic", "--task", "sleep", "--event", "sleep", "--body", "0",
               "--rate", "20", "--seconds", "0.5", "--pause", "0", "--node", nodes[0].control,
               timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "| ZeroMQ round-robin | 10 |" in done.stdout, done.stdout
    assert "| p2c on load (cluster client) | 10 |" in done.stdout, done.stdout
    assert "p99 load-aware / round-robin:" in done.stdout, done.stdout

    # Fill node-1 and node-2: one request running, one queued (the queue's limit).
    holders = []
    for i in (1, 2):
        client = NativeClient(zctx, endpoints["node-%d" % i])
        sids = [client.send_call("sleep", HOLD_SECONDS) for _ in range(2)]
        holders.append((client, sids))
    wait_peers(nodes[0], lambda r: all(
        by_id(r)[o]["apps"]["basic"]["queue"] == 1 for o in ("node-1", "node-2")),
        "node-1 and node-2 to announce a full queue")
    for _ in range(8):
        node_id, endpoint = cluster_call(nodes[1])
        assert node_id == "node-0", (node_id, endpoint)
    for client, sids in holders:
        for sid in sids:
            client.wait(sid, timeout=60)
        client.close()

    # node-2 dies without a word: calls still succeed, then resolve forgets it.
    kill9(nodes[2])
    for _ in range(6):
        node_id, _ = cluster_call(nodes[0], timeout="3")
        assert node_id in ("node-0", "node-1"), node_id
    deadline = time.monotonic() + 20
    while sorted(e["node_id"] for e in ok(nodes[0], "resolve", app="basic")["nodes"]) != [
            "node-0", "node-1"]:
        assert time.monotonic() < deadline, ok(nodes[0], "resolve", app="basic")
        time.sleep(0.05)


def test_cluster_call_names_what_is_wrong(cnode, tmp_path):
    n = cnode()
    done = cli("call", "nothing", "--cluster", "--task", "t", node=n.control)
    assert done.returncode != 0
    assert "nothing" in done.stderr and "404" in done.stderr, done.stderr
    done = cli("call", "tcp://127.0.0.1:1", "--cluster", node=n.control)
    assert done.returncode != 0 and "app by name" in done.stderr, done.stderr
