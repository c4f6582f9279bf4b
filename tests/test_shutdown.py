"""Test 7: SIGTERM with jobs in flight."""

from conftest import NativeClient, alive, endpoint, python_app


def test_sigterm_lets_running_jobs_finish(node, zctx):
    ep = endpoint()
    n = node({"stopme": python_app(
        "basic.py", {"echo": {"type": "native-server", "endpoint": ep}},
        engine={"pool-limit": 3, "grow-threshold": 1})})
    client = NativeClient(zctx, ep)
    sids = [client.send_call("announce_sleep", b"1") for _ in range(3)]
    pids = []
    for sid in sids:
        reply = client.wait_chunks(sid, 1, timeout=10)  # running: it wrote its pid
        pids.append(int(reply.chunks[0]))
    assert len(set(pids)) == 3
    queued = client.send_call("echo", b"queued")
    # The queued request is admitted before the signal: a ping's pong proves the node has
    # read everything sent before it.
    client.ping(7)
    n.terminate()
    for sid, pid in zip(sids, pids):
        reply = client.wait(sid, timeout=10)
        assert reply.ok, reply
        assert reply.chunks == [str(pid).encode(), b"done"]
    reply = client.wait(queued, timeout=10)
    assert reply.code == 503, reply
    code = n.wait_exit(15)
    assert code == 0, "exit code %r; log tail:\n%s" % (code, n.tail())
    assert not [p for p in pids if alive(p)]
    assert n.leftover_workers() == []
