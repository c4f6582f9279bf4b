"""Test 6: malformed, truncated and oversized frames on every endpoint."""

import json
import time

import msgpack
import zmq

from conftest import (CHOKE, CHUNK, OPEN, NativeClient, Reply, endpoint, pack, python_app,
                      recv_multipart, req_socket)

LIMIT = 1024
WORKERS = 3
# A bound for the workers' start only: a Python worker takes 2 to 3 s to start at load 12 and
# more under heavier load, which the 5 and 10 s bounds of the steps below are not meant for.
WORKERS_START = 60.0


def start(node):
    eps = {"native": endpoint(), "server": endpoint(), "sleep": endpoint()}
    manifest = python_app(
        "basic.py",
        {
            "echo": {"type": "native-server", "endpoint": eps["native"], "max-message": LIMIT},
            "zecho": {"type": "zeromq-server", "endpoint": eps["server"], "max-message": LIMIT},
            "sleep": {"type": "zeromq-server", "endpoint": eps["sleep"], "max-message": LIMIT},
        },
        engine={"pool-limit": WORKERS, "pool-min": WORKERS},
    )
    n = node({"bad": manifest})
    # Every worker ready before the first request: each step's bound is then for the node's
    # handling of frames, the thing under test, and a worker's start cannot eat it.
    deadline = time.monotonic() + WORKERS_START
    after = 0
    for _ in range(WORKERS):
        # Each "ready" line names its worker's pid: the line is found again by its text.
        line = n.wait_for_log(r"bad: worker \S+ ready \(pid \d+\)",
                              timeout=max(0.0, deadline - time.monotonic()), start=after)
        after = n.lines.index(line) + 1
    return n, eps


def test_native_server_bad_frames(node, zctx):
    _, eps = start(node)
    client = NativeClient(zctx, eps["native"])
    assert client.call("echo", b"warm").ok
    # Requests in flight before the garbage: a running one and an open one.
    slow = client.send_call("sleep", b"0.5")
    open_sid = client.open("echo")
    client.chunk(open_sid, b"part1")

    def bad(frame, *expect):
        client.send_raw(frame)
        err = client.wait_connection_error(timeout=5)
        assert err[0] == 6 and err[1] == 0, err
        for text in expect:
            assert text in err[3], (err, text)
        return err

    err = bad(b"\xc1 this is not msgpack")
    assert err[2] == 400, err
    err = bad(pack([OPEN, 99, "echo", {}, None])[:-3], "truncated")
    assert err[2] == 400, err
    err = bad(pack([42, 1, 2]), "42")
    assert err[2] == 400, err
    err = bad(pack({"not": "an array"}), "array")
    assert err[2] == 400, err
    err = bad(pack([OPEN, "sid", "echo", {}, None]), "sid")
    assert err[2] == 400, err
    big = pack([CHUNK, open_sid, b"x" * 2000])
    err = bad(big, str(len(big)), str(LIMIT))
    assert err[2] in (400, 413), err

    # Garbage inside a multipart message does not stop the good messages around it.
    sid = client.sid()
    client.replies[sid] = Reply(sid)
    client.send_raw(pack([OPEN, sid, "echo", {}, None]), b"\x93garbage",
                    pack([CHUNK, sid, b"mixed"]), pack([CHOKE, sid]))
    reply = client.wait(sid)
    assert reply.ok and reply.body == b"mixed", reply
    err = client.connection_errors[-1]
    assert err[2] == 400

    # The open request goes on; the oversized chunk was not delivered.
    client.chunk(open_sid, b"part2")
    client.end(open_sid)
    reply = client.wait(open_sid)
    assert reply.ok and reply.body == b"part1part2", reply
    reply = client.wait(slow)
    assert reply.ok and reply.body == b"slept", reply

    # Same connection, then a new one.
    assert client.call("echo", b"same").body == b"same"
    other = NativeClient(zctx, eps["native"])
    assert other.call("echo", b"new").body == b"new"


def test_native_delimiter_is_echoed(node, zctx):
    _, eps = start(node)
    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(eps["native"])
    dealer.send_multipart([b"", pack([OPEN, 1, "echo", {}, None]), pack([CHUNK, 1, b"hi"]),
                           pack([CHOKE, 1])])
    messages = []
    while not messages or messages[-1][0] != CHOKE:
        frames = recv_multipart(dealer, 10)
        assert frames[0] == b"", frames
        messages += [msgpack.unpackb(f, raw=False) for f in frames[1:]]
    assert messages == [[CHUNK, 1, b"hi"], [CHOKE, 1]]
    dealer.close(0)


def test_zeromq_server_bad_requests(node, zctx):
    _, eps = start(node)
    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(eps["server"])
    slow = zctx.socket(zmq.DEALER)
    slow.setsockopt(zmq.LINGER, 0)
    slow.connect(eps["sleep"])

    # A request in flight before the garbage, on the same endpoint and connection.
    slow.send_multipart([b"", b"0.5"])
    slow.send_multipart([b"no delimiter"])
    frames = recv_multipart(slow, 5)
    assert frames[:2] == [b"", b"error"], frames
    assert json.loads(frames[2])["code"] == 400
    assert recv_multipart(slow, 5) == [b"", b"ok", b"slept"]

    dealer.send_multipart([b"no", b"delimiter", b"at all"])
    frames = recv_multipart(dealer, 5)
    assert frames[:2] == [b"", b"error"] and len(frames) == 3, frames
    error = json.loads(frames[2])
    assert error["code"] == 400 and "delimiter" in error["message"], error

    dealer.send_multipart([b"", b"x" * 1500, b"y" * 600])
    frames = recv_multipart(dealer, 5)
    assert frames[:2] == [b"", b"error"], frames
    error = json.loads(frames[2])
    assert error["code"] == 413, error
    assert "2100" in error["message"] and str(LIMIT) in error["message"], error

    # The same connection, then a new one.
    dealer.send_multipart([b"", b"fine"])
    assert recv_multipart(dealer, 10) == [b"", b"ok", b"fine", b"|", b"FINE"]
    req = req_socket(zctx, eps["server"])
    req.send(b"new")
    assert recv_multipart(req, 10) == [b"ok", b"new", b"|", b"NEW"]
    for s in (dealer, slow, req):
        s.close(0)
