"""Test 1: a Python app called over native-server, zeromq-server and a recurring timer."""

import json
import re
import socket
import time

from conftest import NativeClient, Subscriber, endpoint, python_app, recv_multipart, req_socket


def start_basic(node):
    eps = {"native": endpoint(), "server": endpoint(), "pubsub": endpoint()}
    manifest = python_app(
        "basic.py",
        {
            "echo": {"type": "native-server", "endpoint": eps["native"]},
            "zecho": {"type": "zeromq-server", "endpoint": eps["server"]},
            "tick": {"type": "recurring-timer", "interval": 200},
        },
        engine={"pool-limit": 2},
        pubsub=eps["pubsub"],
    )
    return node({"basic": manifest}), eps


def test_native_one_shot(node, zctx):
    _, eps = start_basic(node)
    client = NativeClient(zctx, eps["native"])
    reply = client.call("echo", b"hello")
    assert reply.ok, reply
    assert reply.chunks == [b"hello"]
    # An empty event names the task, here the handler "echo".
    reply = client.call("", b"by task name")
    assert reply.ok and reply.body == b"by task name", reply
    reply = client.call("no_such_handler", b"x")
    assert reply.code == 404, reply
    # The connection goes on after an error.
    assert client.call("echo", b"again").body == b"again"


def test_native_streaming(node, zctx):
    _, eps = start_basic(node)
    client = NativeClient(zctx, eps["native"])
    sid = client.open("stream_echo")
    for i in range(4):
        data = b"chunk-%d" % i
        client.chunk(sid, data)
        # The reply chunk comes before the next request chunk is even sent.
        reply = client.wait_chunks(sid, i + 1, timeout=5)
        assert not reply.done, reply
        assert reply.chunks[i] == b"echo:" + data
    client.end(sid)
    reply = client.wait(sid)
    assert reply.ok, reply
    assert reply.chunks == [b"echo:chunk-%d" % i for i in range(4)]


def test_zeromq_server_req(node, zctx):
    _, eps = start_basic(node)
    req = req_socket(zctx, eps["server"])
    req.send_multipart([b"abc", b"def"])
    assert recv_multipart(req, 10) == [b"ok", b"abcdef", b"|", b"ABCDEF"]

    req.send_multipart([b"boom"])
    frames = recv_multipart(req, 10)
    assert frames[0] == b"error" and len(frames) == 2, frames
    error = json.loads(frames[1])
    assert error == {"code": 502, "message": "ValueError: boom"}

    # An empty request is a job with an empty request.
    req.send(b"")
    assert recv_multipart(req, 10) == [b"ok", b"", b"|", b""]
    req.close(0)


def test_recurring_timer_publishes(node, zctx):
    _, eps = start_basic(node)
    sub = Subscriber(zctx, eps["pubsub"], "basic:tick")
    host = socket.gethostname()
    stamps = []
    answers = 0
    steady = None  # index in stamps where the ticks queued during worker startup are done
    deadline = time.monotonic() + 15
    while (steady is None or len(stamps) - steady < 6 or answers < 2) and time.monotonic() < deadline:
        words, value = sub.recv(timeout=5)
        assert len(words) == 4, words
        app_source, field, hostname, stamp = words
        assert app_source == "basic:tick", words
        assert hostname == host
        assert re.fullmatch(r"\d+\.\d{3}", stamp), stamp
        assert abs(float(stamp) - time.time()) < 5
        if field == "count":
            assert isinstance(value, int) and value >= 1, value
            stamps.append(float(stamp))
            if steady is None and len(stamps) > 1 and stamps[-1] - stamps[-2] > 0.1:
                steady = len(stamps) - 1
        else:
            assert field == "answer", words
            assert value == {"value": 42, "task": "tick"}
            answers += 1
    assert steady is not None and len(stamps) - steady >= 6 and answers >= 2, (stamps, answers)
    # Ticks queue while the first worker starts; after that, one every 200 ms.
    gaps = [b - a for a, b in zip(stamps[steady:], stamps[steady + 1:])]
    assert all(g < 0.6 for g in gaps), gaps
    assert 0.14 < sum(gaps) / len(gaps) < 0.28, gaps
