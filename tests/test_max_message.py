"""A ROUTER endpoint bounds frames by its task's max-message: a frame a little over it reaches
the task (413), one far over it cuts its peer off from the frame's header, on the node's own
ZMTP endpoint and on libzmq (`COCAINE_ZMTP=libzmq`, `ZMQ_MAXMSGSIZE`) alike."""

import json

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from conftest import endpoint, python_app, recv_multipart

LIMIT = 1024
# How far over the task's limit a frame is still read (OVER_LIMIT, adapters/os/src/zmtp_endpoint.rs).
MARGIN = 1 << 20


def dealer(zctx, address):
    s = zctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(address)
    return s


@pytest.mark.parametrize("router", ["node", "libzmq"])
def test_a_frame_far_over_max_message_cuts_off_only_its_peer(node, zctx, monkeypatch, router):
    if router == "libzmq":
        monkeypatch.setenv("COCAINE_ZMTP", "libzmq")
    server = endpoint()
    tasks = {"zecho": {"type": "zeromq-server", "endpoint": server, "max-message": LIMIT}}
    n = node({"app": python_app("basic.py", tasks)})
    other = dealer(zctx, server)
    other.send_multipart([b"", b"before"])
    assert recv_multipart(other, 10) == [b"", b"ok", b"before", b"|", b"BEFORE"]

    big = dealer(zctx, server)
    events = big.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    # Over the limit, within the margin: the task answers 413 and the connection stays.
    big.send_multipart([b"", b"x" * 2000])
    frames = recv_multipart(big, 10)
    assert frames[:2] == [b"", b"error"], frames
    error = json.loads(frames[2])
    assert error["code"] == 413 and str(LIMIT) in error["message"], error

    # Past the margin: the connection is closed, nothing of the frame is answered.
    big.send_multipart([b"", b"y" * (LIMIT + MARGIN + 1)])
    events.setsockopt(zmq.RCVTIMEO, 10_000)
    assert recv_monitor_message(events)["event"] == zmq.EVENT_DISCONNECTED
    if router == "node":
        n.wait_for_log(r"dropped a connection: frame of %d bytes is over the limit of %d"
                       % (LIMIT + MARGIN + 1, LIMIT + MARGIN))
    # The DEALER connects again by itself; the next reply it gets is for what it sends next.
    big.send_multipart([b"", b"after"])
    assert recv_multipart(big, 10) == [b"", b"ok", b"after", b"|", b"AFTER"]
    # The node stayed up and its other peers were not touched.
    other.send_multipart([b"", b"still"])
    assert recv_multipart(other, 10) == [b"", b"ok", b"still", b"|", b"STILL"]
    big.disable_monitor()
    for s in (events, big, other):
        s.close(0)
