"""The Python package's native-protocol client, `cocaine.Client`, against a real node, and
against a hostile peer that answers with garbage: calls, streams both ways, several requests
in flight, error codes, timeouts that cancel, ping."""

import sys
import threading

import pytest
import zmq

from conftest import PYTHON_SDK, endpoint, python_app

sys.path.insert(0, str(PYTHON_SDK))
import cocaine  # noqa: E402  (the SDK from this source tree)
from cocaine.client import CallError, Client  # noqa: E402

TIMEOUT = 15.0


def start(node, engine=None):
    ep = endpoint()
    node({"pc": python_app("basic.py", {"api": {"type": "native-server", "endpoint": ep}},
                           engine=engine or {"pool-limit": 2, "concurrency": 2})})
    return Client(ep, timeout=TIMEOUT)


def test_call_stream_and_ping(node):
    with start(node) as client:
        assert client.call("echo", b"hello") == b"hello"
        assert client.call("echo", "text is utf-8") == b"text is utf-8"
        assert client.call("echo") == b""
        request = client.request("stream_echo")
        request.write(b"one")
        chunks = request.chunks()
        assert next(chunks) == b"echo:one", "a reply chunk before the request ended"
        request.write("two")
        request.end()
        assert list(chunks) == [b"echo:two"]
        assert request.done
        assert 0 < client.ping() < TIMEOUT
        assert client.connection_errors == []


def test_requests_in_flight_keep_their_own_replies(node):
    with start(node) as client:
        slow = client.request("sleep")
        slow.write(b"0.3")
        slow.end()
        quick = [client.request("echo") for _ in range(5)]
        for i, r in enumerate(quick):
            r.write(b"%d" % i)
            r.end()
        # Reading the slow one first files the quick ones' replies for later.
        assert slow.result() == b"slept"
        assert [r.result() for r in quick] == [b"%d" % i for i in range(5)]


def test_errors_are_call_errors_with_the_code(node):
    with start(node) as client:
        with pytest.raises(CallError) as failed:
            client.call("no_such_event", b"")
        assert failed.value.code >= 400 and failed.value.message
        with pytest.raises(CallError) as timed_out:
            client.call("sleep", b"5", timeout=0.3)
        assert timed_out.value.code == 504, timed_out.value
        assert client.call("echo", b"still fine") == b"still fine"


def test_a_full_queue_is_503(node):
    with start(node, {"pool-limit": 1, "concurrency": 1, "queue-limit": 1}) as client:
        running = client.request("announce_sleep")
        running.write(b"1")
        running.end()
        assert next(running.chunks()), "the first job runs"
        queued = client.request("echo")
        queued.write(b"q")
        queued.end()
        with pytest.raises(CallError) as full:
            client.call("echo", b"x")
        assert full.value.code == 503
        assert queued.result() == b"q"


def test_giving_up_cancels_the_request_and_drops_its_late_reply(node):
    with start(node, {"pool-limit": 1, "concurrency": 1}) as client:
        r = client.request("sleep")
        r.write(b"0.5")
        r.end()
        with pytest.raises(TimeoutError):
            r.result(timeout=0.1)
        # The cancelled job's late answer is dropped, not mistaken for a protocol error, and the
        # worker is free again for the next call.
        assert client.call("echo", b"after") == b"after"
        assert client.connection_errors == []


def test_cocaine_client_is_exported_lazily():
    assert cocaine.Client is Client and cocaine.CallError is CallError
    code = ("import sys, cocaine; cocaine.App; "
            "assert 'zmq' not in sys.modules, 'the worker side imported zmq'")
    import subprocess
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={"PYTHONPATH": str(PYTHON_SDK)})


def hostile_peer(replies):
    """A ROUTER that answers the first message it gets with `replies` (raw frames)."""
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")

    def serve():
        try:
            if router.poll(int(TIMEOUT * 1000)):
                identity = router.recv_multipart()[0]
                router.send_multipart([identity] + replies)
        finally:
            router.close(0)

    threading.Thread(target=serve, daemon=True).start()
    return "tcp://127.0.0.1:%d" % port


# Frames a broken or hostile node could send for the client's first request (sid 1).
FOR_THE_REQUEST = [
    [b"\x93\x04\x01\x07"],            # a chunk whose data is not bytes
    [b"\x94\x06\x01\xa2no\xa2no"],    # an error whose code is a string
    [b"\x93\x05\x01\x01"],            # an end with an extra element
]
# Frames that belong to no request.
UNADDRESSED = [
    [b"\xc1"],                        # not msgpack
    [b"\x92\x04"],                    # truncated
    [b"\x91\x05"],                    # too short to have a sid
    [b"\x93\x04\x63\xc4\x00"],         # a chunk for a request never made (sid 99)
]


@pytest.mark.parametrize("frames", FOR_THE_REQUEST)
def test_a_malformed_reply_is_a_502_call_error(frames):
    with Client(hostile_peer(frames), timeout=TIMEOUT) as client:
        with pytest.raises(CallError) as failed:
            client.call("echo", b"x")
        assert failed.value.code == 502 and "malformed reply" in failed.value.message


@pytest.mark.parametrize("frames", UNADDRESSED)
def test_a_stray_frame_is_kept_aside_and_the_request_times_out(frames):
    with Client(hostile_peer(frames), timeout=1.0) as client:
        with pytest.raises(TimeoutError):
            client.call("echo", b"x")
        assert len(client.connection_errors) == 1, client.connection_errors
