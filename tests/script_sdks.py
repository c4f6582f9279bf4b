"""End-to-end checks shared by the script-language SDKs (JavaScript, Perl): the same calls,
streams, error codes and failures as the Python SDK's tests, through a real node.

Each language's test file (test_javascript.py, test_perl.py) runs these with its app type
and its twins of tests/apps/basic.py and broken.py.
"""

import json
import os
import re
import signal
import time

from conftest import NativeClient, app_args, endpoint, recv_multipart, req_socket, wait_gone


class Language:
    def __init__(self, app_type, ext, broken):
        self.app_type = app_type
        self.ext = ext
        # {broken app file: a line of the error the node must show}
        self.broken = broken

    def manifest(self, app_file, tasks, engine=None):
        manifest = {"type": self.app_type, "args": app_args(app_file), "tasks": tasks}
        if engine:
            manifest["engine"] = engine
        return manifest

    def start(self, node, engine=None):
        eps = {"native": endpoint(), "server": endpoint()}
        manifest = self.manifest("basic." + self.ext, {
            "echo": {"type": "native-server", "endpoint": eps["native"]},
            "zecho": {"type": "zeromq-server", "endpoint": eps["server"]},
        }, engine=engine or {"pool-limit": 2})
        return node({"basic": manifest}), eps


def calls(lang, node, zctx):
    _, eps = lang.start(node)
    client = NativeClient(zctx, eps["native"])
    reply = client.call("echo", b"hello")
    assert reply.ok and reply.chunks == [b"hello"], reply
    reply = client.call("", b"by task name")
    assert reply.ok and reply.body == b"by task name", reply
    assert client.call("echo", b"").ok
    big = os.urandom(300000)
    assert client.call("echo", big).body == big
    reply = client.call("no_such_handler", b"x")
    assert reply.code == 404 and "no_such_handler" in reply.message, reply
    assert client.call("echo", b"again").body == b"again"

    req = req_socket(zctx, eps["server"])
    req.send_multipart([b"abc", b"def"])
    assert recv_multipart(req, 10) == [b"ok", b"abcdef", b"|", b"ABCDEF"]
    req.send_multipart([b"boom"])
    frames = recv_multipart(req, 10)
    assert frames[0] == b"error" and len(frames) == 2, frames
    error = json.loads(frames[1])
    assert error["code"] == 502 and "boom" in error["message"], error
    req.close(0)


def streaming(lang, node, zctx):
    _, eps = lang.start(node)
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


def error_codes(lang, node, zctx):
    _, eps = lang.start(node)
    client = NativeClient(zctx, eps["native"])
    reply = client.call("code", b"418 I'm a teapot")
    assert (reply.code, reply.message) == (418, "I'm a teapot"), reply
    reply = client.call("zecho", b"boom")
    assert reply.code == 502 and "boom" in reply.message, reply
    assert client.call("echo", b"after errors").body == b"after errors"


def crash_is_500(lang, node, zctx):
    _, eps = lang.start(node, {"pool-limit": 1})
    client = NativeClient(zctx, eps["native"])
    pid = int(client.call("pid").body)
    sid = client.send_call("announce_sleep", b"30")
    reply = client.wait_chunks(sid, 1)
    assert int(reply.chunks[0]) == pid
    os.kill(pid, signal.SIGKILL)
    reply = client.wait(sid, timeout=5)
    assert reply.code == 500, reply
    assert wait_gone(pid, 5)
    again = client.call("pid")
    assert again.ok, again
    assert int(again.body) != pid


def hang_is_504(lang, node, zctx):
    _, eps = lang.start(node, {"pool-limit": 1, "termination-timeout": 0.5})
    client = NativeClient(zctx, eps["native"])
    pid = int(client.call("pid").body)
    started = time.monotonic()
    reply = client.call("sleep", b"60", policy={"timeout": 300}, timeout=5)
    assert reply.code == 504, reply
    assert wait_gone(pid, 5), "worker %d still alive 5 s after its job timed out" % pid
    assert time.monotonic() - started < 3.0
    again = client.call("pid")
    assert again.ok, again
    assert int(again.body) != pid


def broken_app(lang, node, zctx, app_file):
    bad_ep, good_ep = endpoint(), endpoint()
    n = node({
        "broken": lang.manifest(
            app_file, {"echo": {"type": "native-server", "endpoint": bad_ep}},
            # expose-errors: callers get the whole report, which names the app's file.
            engine={"restart-intensity": 1, "restart-period": 30, "startup-timeout": 5,
                    "expose-errors": True}),
        "good": lang.manifest("basic." + lang.ext,
                              {"echo": {"type": "native-server", "endpoint": good_ep}}),
    })
    bad = NativeClient(zctx, bad_ep)
    good = NativeClient(zctx, good_ep)
    text = lang.broken[app_file]
    first = bad.call("echo", b"x", timeout=10)
    assert first.code in (500, 503), first
    assert text in first.message, first
    assert app_file in first.message, first  # the error names the app's file
    second = bad.call("echo", b"y", timeout=10)
    assert second.code in (500, 503) and text in second.message, second
    n.wait_for_log(r"broken.*" + re.escape(text), timeout=5)
    n.wait_for_log(r"broken: app is broken, retrying in", timeout=5)
    for i in range(3):
        reply = good.call("echo", b"good %d" % i)
        assert reply.ok and reply.body == b"good %d" % i, reply
