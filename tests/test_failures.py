"""Tests 2-4: a worker killed mid-job, a handler past its timeout, app code that cannot load."""

import os
import re
import signal
import time

from conftest import NativeClient, endpoint, python_app, wait_gone


def start(node, engine, app_file="basic.py", name="basic"):
    ep = endpoint()
    manifest = python_app(app_file, {"echo": {"type": "native-server", "endpoint": ep}}, engine=engine)
    return node({name: manifest}), ep


def test_worker_killed_mid_job(node, zctx):
    _, ep = start(node, {"pool-limit": 1})
    client = NativeClient(zctx, ep)
    pid = int(client.call("pid").body)
    sid = client.send_call("announce_sleep", b"30")
    # The job is running once its first chunk (the worker's pid) arrives.
    reply = client.wait_chunks(sid, 1)
    assert int(reply.chunks[0]) == pid
    os.kill(pid, signal.SIGKILL)
    reply = client.wait(sid, timeout=5)
    assert reply.code == 500, reply
    assert wait_gone(pid, 5)
    # The next call works, on a new worker.
    again = client.call("pid")
    assert again.ok, again
    assert int(again.body) != pid
    assert client.call("echo", b"still here").body == b"still here"


def test_timeout_kills_a_hung_worker(node, zctx):
    n, ep = start(node, {"pool-limit": 1, "termination-timeout": 0.5})
    client = NativeClient(zctx, ep)
    pid = int(client.call("pid").body)
    started = time.monotonic()
    reply = client.call("sleep", b"60", policy={"timeout": 300}, timeout=5)
    elapsed = time.monotonic() - started
    assert reply.code == 504, reply
    assert 0.25 <= elapsed < 1.2, elapsed
    # The worker does not let go of the job (it sleeps 60 s): killed after termination-timeout.
    assert wait_gone(pid, 5), "worker %d still alive 5 s after its job timed out" % pid
    gone_after = time.monotonic() - started
    assert gone_after < 3.0, gone_after
    again = client.call("pid")
    assert again.ok, again
    assert int(again.body) != pid


def test_app_that_fails_to_import(node, zctx):
    bad_ep, good_ep = endpoint(), endpoint()
    n = node({
        "broken": python_app(
            "broken.py",
            {"echo": {"type": "native-server", "endpoint": bad_ep}},
            # expose-errors: the caller gets the whole report (the default is one short line,
            # test_a_broken_apps_callers_get_no_traceback_by_default).
            engine={"restart-intensity": 1, "restart-period": 30, "startup-timeout": 5,
                    "expose-errors": True},
        ),
        "good": python_app("basic.py", {"echo": {"type": "native-server", "endpoint": good_ep}}),
    })
    bad = NativeClient(zctx, bad_ep)
    good = NativeClient(zctx, good_ep)
    traceback_text = "ModuleNotFoundError: No module named 'nonexistent_module_for_e2e'"

    first = bad.call("echo", b"x", timeout=10)
    assert first.code in (500, 503), first
    assert traceback_text in first.message, first
    assert "Traceback" in first.message, first

    # Broken now: refused at once, with the reason.
    second = bad.call("echo", b"y", timeout=10)
    assert second.code in (500, 503), second
    assert traceback_text in second.message, second

    n.wait_for_log(r"broken.*" + re.escape(traceback_text), timeout=5)
    n.wait_for_log(r"broken: app is broken, retrying in", timeout=5)

    # The other app keeps serving.
    for i in range(3):
        reply = good.call("echo", b"good %d" % i)
        assert reply.ok and reply.body == b"good %d" % i, reply


def test_a_broken_apps_callers_get_no_traceback_by_default(node, zctx):
    """Callers hear one short line with no server paths; the log has the whole report once
    and then one line per repeat, and no traceback line logged on its own."""
    bad_ep = endpoint()
    n = node({"broken": python_app(
        "broken.py", {"echo": {"type": "native-server", "endpoint": bad_ep}},
        engine={"restart-intensity": 1, "restart-period": 30, "startup-timeout": 5})})
    bad = NativeClient(zctx, bad_ep)
    for body in (b"x", b"y"):
        reply = bad.call("echo", body, timeout=10)
        assert reply.code in (500, 503), reply
        assert reply.message.startswith("app is broken: worker "), reply
        assert "exited before its handshake" in reply.message, reply
        for leak in ("Traceback", "File ", "broken.py", "ModuleNotFoundError", "\n"):
            assert leak not in reply.message, (leak, reply)
    n.wait_for_log(r"broken: app is broken, retrying in", timeout=5)
    assert len(re.findall(r"Traceback \(most recent call last\)", n.log)) == 1, n.log
    assert "ModuleNotFoundError" in n.log
