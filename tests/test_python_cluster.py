"""The Python cluster client (`cocaine.Client.cluster`, docs/cluster.md) against three real
nodes over 127.0.0.1/2/3 (static peers), on every runtime: it resolves the app through one
control endpoint, spreads calls, sends none to nodes whose queue is full (their announced
load, or a 503 retried elsewhere: no call fails), survives a node killed with SIGKILL (a
silent node is left for another), and follows membership (the dead node leaves its list,
from a control endpoint the first answer named when the one it was given is gone).

Nothing sleeps a fixed time: every wait polls with a deadline.
"""

import sys
import time

from cluster_nodes import HOSTS, by_id, start_cluster, wait_peers
from conftest import PYTHON_SDK, NativeClient, free_port
from control import cnode, deploy, kill9  # noqa: F401 (cnode: a fixture)
from test_cluster_balance import running_everywhere, sleeper

sys.path.insert(0, str(PYTHON_SDK))
from cocaine.client import Client  # noqa: E402  (the SDK from this source tree)

HOLD_SECONDS = b"4"


def test_python_cluster_client_balances_retries_and_follows_membership(cnode, tmp_path, zctx):
    port, app_port = free_port(), free_port()
    nodes = start_cluster(cnode, port)
    for n in nodes:
        deploy(n, "basic", sleeper(app_port))
    running_everywhere(nodes)

    cluster = Client.cluster([nodes[0].control], "basic", "sleep", timeout=3.0, refresh=0.2)
    try:
        assert sorted(n["node_id"] for n in cluster.nodes) == ["node-0", "node-1", "node-2"]
        endpoints = {n["node_id"]: n["endpoint"] for n in cluster.nodes}
        for i, host in enumerate(HOSTS[:3]):
            assert endpoints["node-%d" % i] == "tcp://%s:%d" % (host, app_port), endpoints

        # Idle nodes, equal loads: the calls spread.
        answered = set()
        for _ in range(12):
            reply = cluster.call("sleep", b"0")
            assert reply.body == b"slept", reply
            answered.add(reply.node_id)
        assert len(answered) >= 2, answered

        # node-1 and node-2 full (one request running, one queued): every call goes to node-0.
        holders = []
        for i in (1, 2):
            client = NativeClient(zctx, endpoints["node-%d" % i])
            holders.append((client, [client.send_call("sleep", HOLD_SECONDS) for _ in range(2)]))
        wait_peers(nodes[0], lambda r: all(
            by_id(r)[o]["apps"]["basic"]["queue"] == 1 for o in ("node-1", "node-2")),
            "node-1 and node-2 to announce a full queue")
        for _ in range(6):
            reply = cluster.call("sleep", b"0")
            assert reply.node_id == "node-0", reply
        for client, sids in holders:
            for sid in sids:
                client.wait(sid, timeout=30)
            client.close()

        # node-0, the one the client was given, dies: calls still succeed elsewhere.
        kill9(nodes[0])
        for _ in range(6):
            reply = cluster.call("sleep", b"0")
            assert reply.body == b"slept" and reply.node_id in ("node-1", "node-2"), reply

        # Once the others forget it, so does the client: it asks a control endpoint the first
        # answer named.
        deadline = time.monotonic() + 20
        while sorted(n["node_id"] for n in cluster.nodes) != ["node-1", "node-2"]:
            assert time.monotonic() < deadline, cluster.nodes
            cluster.call("sleep", b"0")
            time.sleep(0.05)
        assert set(cluster.controls) >= {"tcp://%s:%d" % (h, port) for h in HOSTS[1:3]}
    finally:
        cluster.close()
