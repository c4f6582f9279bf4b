"""Native apps (docs/protocol.md §9) on both backends: the C++ echo app of
manifests/apps/native-echo-cpp, built here with the system's C++ compiler, runs on node threads
(`backend: thread`) and in `cocaine-native-host` processes (`backend: process`); the Rust one
(adapters/native/examples/echo-rust, built by scripts/e2e) too. Same answers, same stats; a job
that overruns its timeout gets 504 and the node keeps serving; bad libraries and manifests get
clear errors."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, NativeClient, cocaine_bin, endpoint
from control import ok

BACKENDS = ["thread", "process"]
CPP_APP = REPO / "manifests" / "apps" / "native-echo-cpp"


@pytest.fixture(scope="module")
def cpp_echo(tmp_path_factory):
    """The C++ echo app, built into a fresh folder with its own build script."""
    out = tmp_path_factory.mktemp("native") / "libecho.so"
    subprocess.run([str(CPP_APP / "build"), str(out)], check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def rust_echo():
    path = Path(cocaine_bin()).parent / "libcocaine_native_echo.so"
    if not path.is_file():
        pytest.fail("no %s: build it with cargo build -p cocaine-native-echo (scripts/e2e does)"
                    % path)
    return path


@pytest.fixture(scope="module", autouse=True)
def native_host():
    path = Path(cocaine_bin()).parent / "cocaine-native-host"
    if not os.access(path, os.X_OK):
        pytest.fail("no %s: build it with cargo build -p cocaine-native (scripts/e2e does)"
                    % path)
    return path


def native_app(library, backend, server, engine=None):
    manifest = {
        "type": "native",
        "args": "local://%s" % library,
        "engine": dict({"backend": backend}, **(engine or {})),
        "tasks": {"echo": {"type": "native-server", "endpoint": server}},
    }
    return manifest


def task_stats(n, app):
    return ok(n, "info", app=app)["engine"]["tasks"]["echo"]


def wait_stats(n, app, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        stats = task_stats(n, app)
        if predicate(stats):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError("stats never matched: %r" % stats)
        time.sleep(0.05)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpp_echo_answers_and_counts_its_jobs(node, zctx, cpp_echo, backend):
    server = endpoint()
    n = node({"cpp": native_app(cpp_echo, backend, server)})
    c = NativeClient(zctx, server)
    assert c.call("", b"hello").body == b"hello"
    # Streamed: chunks go through one by one.
    sid = c.open("echo")
    for part in (b"a", b"bc", b""):
        c.chunk(sid, part)
    c.end(sid)
    reply = c.wait(sid)
    assert reply.ok and reply.chunks == [b"a", b"bc", b""]
    assert c.call("args").body == ("local://%s" % cpp_echo).encode()
    failed = c.call("fail", b"418")
    assert (failed.code, failed.message) == (418, "failed with 418")
    unknown = c.call("nope")
    assert (unknown.code, unknown.message) == (404, 'no handler for event "nope"')
    thrown = c.call("throw")
    assert (thrown.code, thrown.message) == (500, "asked to throw")
    # One worker, one instance: it saw every job so far.
    assert c.call("count").body == b"7"
    stats = wait_stats(n, "cpp", lambda s: s["accepted"] == 7)
    assert stats["completed"] == 4 and stats["failed"] == 3, stats
    assert stats["run"]["count"] == 7
    info = ok(n, "info", app="cpp")["engine"]
    assert info["state"] == "running" and info["workers"]["ready"] == 1, info
    c.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_overrunning_job_gets_504_and_the_node_keeps_serving(node, zctx, cpp_echo, backend):
    server = endpoint()
    engine = {"pool-limit": 2, "termination-timeout": 0.3}
    n = node({"cpp": native_app(cpp_echo, backend, server, engine)})
    c = NativeClient(zctx, server)
    assert c.call("", b"warm").ok
    mark = len(n.lines)
    # `sleep` ignores the cancel that follows the timeout: its worker must go.
    started = time.monotonic()
    late = c.call("sleep", b"4000", policy={"timeout": 200})
    assert (late.code, late.message) == (504, "timed out after 200 ms")
    assert time.monotonic() - started < 2.0
    if backend == "thread":
        n.wait_for_log(r"a worker thread cannot be killed; retired it", timeout=5, start=mark)
    n.wait_for_log(r"exited", timeout=5, start=mark)
    # Served meanwhile and after, by a new worker, while the old thread still sleeps.
    for i in range(5):
        assert c.call("", b"next %d" % i).body == b"next %d" % i
    # A handler that looks at cancels just stops: no worker is lost.
    spun = c.call("spin", b"4000", policy={"timeout": 200})
    assert spun.code == 504
    assert c.call("", b"still").body == b"still"
    stats = wait_stats(n, "cpp", lambda s: s["accepted"] == 9)
    assert stats["by_code"].get("504") == 2, stats
    assert ok(n, "info", app="cpp")["engine"]["state"] == "running"
    c.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_rust_echo_app_runs_too(node, zctx, rust_echo, backend):
    server = endpoint()
    node({"rust": native_app(rust_echo, backend, server)})
    c = NativeClient(zctx, server)
    assert c.call("", b"from rust").body == b"from rust"
    assert c.call("args").body == ("local://%s" % rust_echo).encode()
    failed = c.call("fail", b"409")
    assert (failed.code, failed.message) == (409, "failed with 409")
    assert c.call("nope").code == 404
    c.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_library_that_does_not_load_fails_its_calls_clearly(node, zctx, tmp_path, backend):
    bogus = tmp_path / "libbogus.so"
    bogus.write_text("not a shared library")
    server = endpoint()
    engine = {"restart-intensity": 1, "restart-period": 60, "startup-timeout": 5}
    n = node({"bogus": native_app(bogus, backend, server, engine)})
    c = NativeClient(zctx, server)
    reply = c.call("", b"x", timeout=15)
    assert reply.code == 500, reply
    assert "cannot load %s" % bogus in n.log
    # Malformed input on the endpoint still gets its error, and the node goes on.
    c.send_raw(b"\xc1")
    code = c.wait_connection_error()[2]
    assert code == 400
    c.close()


def test_python_on_the_thread_backend_is_a_manifest_error(node):
    manifest = {"type": "python", "args": "local:///srv/app.py",
                "engine": {"backend": "thread"},
                "tasks": {"echo": {"type": "native-server", "endpoint": endpoint()}}}
    n = node({"py": manifest}, expect_up=False)
    assert n.proc.returncode != 0
    assert 'app "py": engine.backend: python apps cannot run on the thread backend' in n.log
