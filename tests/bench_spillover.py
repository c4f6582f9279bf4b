"""What spillover costs a call: echo calls handed on by a full node against the same calls
sent straight to the peer, in one run (a measurement, not a test: nothing is asserted on
speed). Not collected by default; run it by name:

    COCAINE_RUNTIMES=mio scripts/e2e tests/bench_spillover.py -s

Two nodes (tests/test_cluster_spillover.py's pair); node A's one worker and its queue of one
are held by two 30 s calls, so every call through A goes to B.
"""

import time

from conftest import NativeClient, free_port
from control import cnode, ok  # noqa: F401 (cnode: a fixture)
from test_cluster_spillover import HOSTS, deploy_pair, start_pair

N = 300

def lat(client, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.wait(client.send_call("echo", b"x" * 64))
        assert r.ok, (r.code, r.message)
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99)]

def test_spillover_cost(cnode, zctx):
    port, app_port = free_port(), free_port()
    nodes = start_pair(cnode, port)
    deploy_pair(nodes, "m", app_port, spillover=True)
    hold = NativeClient(zctx, "tcp://%s:%d" % (HOSTS[0], app_port), timeout=60)
    for _ in range(2):
        hold.send_call("sleep", b"30")
    deadline = time.monotonic() + 10
    while ok(nodes[0], "info", app="m")["engine"]["queue"] < 1:
        assert time.monotonic() < deadline, "A's queue never filled"
        time.sleep(0.02)
    via_a = NativeClient(zctx, "tcp://%s:%d" % (HOSTS[0], app_port))
    direct = NativeClient(zctx, "tcp://%s:%d" % (HOSTS[1], app_port))
    lat(direct, 50)  # warm-up, both ways
    lat(via_a, 50)
    d = lat(direct, N); a = lat(via_a, N)
    print("\n| path | p50 (ms) | p99 (ms) |\n|---|---:|---:|")
    print("| straight to B | %.2f | %.2f |" % d)
    print("| through full A, handed to B | %.2f | %.2f |" % a)
    print("p50 handed on / straight: %.2f; p99: %.2f" % (a[0] / d[0], a[1] / d[1]))
    print("A:", ok(nodes[0], "info", app="m")["spillover"], "B:",
          ok(nodes[1], "info", app="m")["spillover"])
    for c in (via_a, direct, hold):
        c.close()
