"""Spillover (docs/cluster.md, "Spillover"), end to end on every runtime.

Two nodes on one machine over 127.0.0.1/2 (`--host`, static `--peer`s). Node A runs an app
with one slow worker and a queue of one; node B runs it with room to spare. A burst of calls
through A:
- with `cluster.spillover` on, every call succeeds: what does not fit A's queue is handed to B
  over the native protocol (B counts it as forwarded in, A as forwarded out);
- with it off, the same burst gets 503s.

Nothing sleeps a fixed time: every wait polls with a deadline.
"""

from cluster_nodes import HOSTS, by_id, start_cluster, wait_peers
from conftest import NativeClient, app_args, free_port
from control import cnode, deploy, ok, wait_state  # noqa: F401 (cnode: a fixture)

BURST = 8
# Node B starts four Python workers at once: at 200 ms a loaded machine (two test workers,
# other builds) once kept its announcements back for three intervals, and A forgot it.
INTERVAL_MS = 500
SLEEP = b"0.3"


def manifest(app_port, spillover, pool, queue):
    return {"type": "python", "args": app_args("basic.py"),
            "engine": {"pool-limit": pool, "pool-min": pool, "queue-limit": queue},
            "cluster": {"spillover": spillover},
            "tasks": {"sleep": {"type": "native-server", "endpoint": "tcp://*:%d" % app_port}}}


def burst(zctx, endpoint):
    """BURST calls at once through one connection; returns their replies."""
    client = NativeClient(zctx, endpoint, timeout=30.0)
    try:
        sids = [client.send_call("sleep", SLEEP) for _ in range(BURST)]
        return [client.wait(sid) for sid in sids]
    finally:
        client.close()


def deploy_pair(nodes, app, app_port, spillover):
    deploy(nodes[0], app, manifest(app_port, spillover, pool=1, queue=1))
    deploy(nodes[1], app, manifest(app_port, spillover, pool=4, queue=2 * BURST))
    for n in nodes:
        wait_state(n, app)  # the first worker is up: A's one worker takes the first call
    wait_peers(nodes[0], lambda r: by_id(r).get("node-1", {}).get("apps", {}).get(app, {})
               .get("state") == "running", "node-0 to see %s running on node-1" % app)


def spill_stats(node, app):
    return ok(node, "info", app=app)["spillover"]


def test_a_full_node_hands_its_overflow_to_a_peer_and_only_with_spillover_on(cnode, zctx):
    port = free_port()
    nodes = start_cluster(cnode, port, 2, interval_ms=INTERVAL_MS)
    a_endpoint = lambda app_port: "tcp://%s:%d" % (HOSTS[0], app_port)  # noqa: E731

    # Spillover on: no call fails; what A had no room for ran on B.
    on_port = free_port()
    deploy_pair(nodes, "spill", on_port, spillover=True)
    replies = burst(zctx, a_endpoint(on_port))
    failed = [(r.code, r.message) for r in replies if not r.ok]
    assert failed == [], failed
    assert all(r.body == b"slept" for r in replies), replies
    out, into = spill_stats(nodes[0], "spill"), spill_stats(nodes[1], "spill")
    # One runs on A and one waits there; the rest went to B, each once.
    assert out["forwarded_out"] == BURST - 2, out
    assert into["forwarded_in"] == out["forwarded_out"], into
    assert into["forwarded_out"] == 0 and out["forward_failures"] == 0, (out, into)
    assert ok(nodes[0], "info")["spillover"]["open"] == 0

    # Spillover off: the same burst through A gets 503s for what does not fit.
    off_port = free_port()
    deploy_pair(nodes, "nospill", off_port, spillover=False)
    replies = burst(zctx, a_endpoint(off_port))
    codes = sorted(r.code or 200 for r in replies)
    assert codes == [200, 200] + [503] * (BURST - 2), [(r.code, r.message) for r in replies]
    assert spill_stats(nodes[1], "nospill")["forwarded_in"] == 0
