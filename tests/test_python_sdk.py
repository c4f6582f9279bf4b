"""The Python SDK as Python users expect it: `cocaine.App` registration, `async def`
handlers on an asyncio loop (plain, streaming, cancelled), and an SDK installed with
`pip install ./adapters/python` into a fresh virtualenv, which the node finds on its own.

The app is the example's (`manifests/apps/async_app.py`)."""

import json
import os
import shutil
import subprocess
import sys
import time

from conftest import REPO, NativeClient, endpoint

EXAMPLE = REPO / "manifests" / "python-async.json"
SDK = REPO / "adapters" / "python"


def async_manifest():
    manifest = json.loads(EXAMPLE.read_text())
    manifest["args"] = "local://%s" % (REPO / "manifests" / "apps" / "async_app.py")
    manifest["tasks"]["async"]["endpoint"] = endpoint()
    return manifest


def wait_for_body(client, event, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        body = client.call(event).body
        if body == want or time.monotonic() > deadline:
            return body


def test_async_and_registered_handlers(node, zctx):
    manifest = async_manifest()
    node({"python-async": manifest})
    client = NativeClient(zctx, manifest["tasks"]["async"]["endpoint"])

    assert client.call("hello", b"node").body == b"hello, node"
    reply = client.call("fetch", b"x")
    assert reply.ok and reply.chunks == [b"fetched x"], reply

    # Sixteen calls at once on one worker: tasks overlap on its loop.
    sids = [client.send_call("fetch", b"%d" % i) for i in range(16)]
    for i, sid in enumerate(sids):
        reply = client.wait(sid)
        assert reply.ok and reply.body == b"fetched %d" % i, reply

    # Streaming: each chunk comes back before the next is sent.
    sid = client.open("chat")
    for i, word in enumerate([b"one", b"two"]):
        client.chunk(sid, word)
        assert client.wait_chunks(sid, i + 1, timeout=5).chunks[i] == word.upper()
    client.end(sid)
    assert client.wait(sid).ok

    assert client.call("no_such_event").code == 404


def test_cancel_reaches_the_async_task(node, zctx):
    manifest = async_manifest()
    node({"python-async": manifest})
    client = NativeClient(zctx, manifest["tasks"]["async"]["endpoint"])
    sid = client.send_call("wait", b"60000")
    # The task is running once `cancelled` (same worker, pool-limit 1) answers at all.
    assert client.call("cancelled").body == b"0"
    client.cancel(sid)
    assert wait_for_body(client, "cancelled", b"1") == b"1"
    # The worker goes on serving.
    assert client.call("fetch", b"after").body == b"fetched after"


def make_venv(folder):
    """A fresh virtualenv with the SDK installed by pip from a copy of adapters/python (pip
    builds in the source folder, which must stay clean)."""
    source = folder / "sdk"
    shutil.copytree(SDK, source, ignore=shutil.ignore_patterns(
        "tests", "__pycache__", "build", "*.egg-info"))
    venv = folder / "venv"
    # No pip inside: the test's own pip installs into it (`pip --python`), which is quicker
    # than ensurepip and is the same install.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--disable-pip-version-check", str(source)], check=True)
    return python


def test_the_node_finds_an_sdk_installed_in_a_virtualenv(node, zctx, tmp_path, monkeypatch):
    python = make_venv(tmp_path)
    app = tmp_path / "where.py"
    app.write_text("import cocaine\n\n"
                   "app = cocaine.App()\n\n"
                   "@app.handler('where')\n"
                   "async def where(request):\n"
                   "    return [cocaine.__file__]\n")
    ep = endpoint()
    manifest = {"type": "python", "args": "local://%s" % app,
                "tasks": {"where": {"type": "native-server", "endpoint": ep}}}
    monkeypatch.delenv("COCAINE_PYTHON_PATH", raising=False)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    n = node({"where": manifest}, sdk_from_repo=False, extra_args=["--python", str(python)])
    assert "python SDK: the one installed for %s" % python in n.log
    where = NativeClient(zctx, ep).call("where").body.decode()
    assert where.startswith(str(tmp_path / "venv")), where
    assert os.path.isfile(os.path.join(os.path.dirname(where), "py.typed"))


def test_cocaine_inline_serves_several_jobs_per_worker(node, zctx, tmp_path, monkeypatch):
    """COCAINE_INLINE=1 in the node's environment reaches its workers: with `concurrency` 4
    each worker runs its jobs one after another on its reading thread, and every job of a
    burst still gets its own reply."""
    app = tmp_path / "inline.py"
    app.write_text("import threading\n\n"
                   "def where(request):\n"
                   "    return [threading.current_thread().name.encode(), b':', request]\n")
    ep = endpoint()
    manifest = {"type": "python", "args": "local://%s" % app,
                "engine": {"pool-limit": 1, "pool-min": 1, "concurrency": 4},
                "tasks": {"where": {"type": "native-server", "endpoint": ep}}}
    monkeypatch.setenv("COCAINE_INLINE", "1")
    node({"inline": manifest})
    client = NativeClient(zctx, ep)
    sids = [client.send_call("where", b"%d" % i) for i in range(12)]
    for i, sid in enumerate(sids):
        reply = client.wait(sid)
        assert reply.ok and reply.body == b"MainThread:%d" % i, reply


def thread_app(tmp_path):
    """An app whose `where` handler answers with the name of the thread it ran on."""
    app = tmp_path / "where.py"
    app.write_text("import threading\n\n"
                   "def where(request):\n"
                   "    return [threading.current_thread().name.encode(), b':', request]\n")
    return app


def concurrent_manifest(app, engine):
    """One worker taking 4 jobs at once, plus `engine`; its native-server endpoint is fresh."""
    return {"type": "python", "args": "local://%s" % app,
            "engine": dict({"pool-limit": 1, "pool-min": 1, "concurrency": 4}, **engine),
            "tasks": {"where": {"type": "native-server", "endpoint": endpoint()}}}


def threads_of_a_burst(zctx, manifest, jobs=12):
    """Sends `jobs` calls at once; every one must get its own reply. Returns the names of the
    threads that ran them."""
    client = NativeClient(zctx, manifest["tasks"]["where"]["endpoint"])
    sids = [client.send_call("where", b"%d" % i) for i in range(jobs)]
    names = set()
    for i, sid in enumerate(sids):
        reply = client.wait(sid)
        assert reply.ok, reply
        name, _, body = reply.body.partition(b":")
        assert body == b"%d" % i, reply
        names.add(name)
    return names


def test_the_manifest_inline_key_runs_that_apps_jobs_inline(node, zctx, tmp_path, monkeypatch):
    """`engine.inline: true` starts the app's workers with COCAINE_INLINE=1: at `concurrency`
    4 its one worker runs a burst of plain jobs one after another on its reading thread. The
    setting is the app's own: another app of the same node, without the key, keeps its pool."""
    monkeypatch.delenv("COCAINE_INLINE", raising=False)
    app = thread_app(tmp_path)
    fast = concurrent_manifest(app, {"inline": True})
    plain = concurrent_manifest(app, {})
    node({"fast": fast, "plain": plain})
    assert threads_of_a_burst(zctx, fast) == {b"MainThread"}
    pooled = threads_of_a_burst(zctx, plain)
    assert b"MainThread" not in pooled, pooled


def test_the_manifest_inline_key_wins_over_the_nodes_environment(node, zctx, tmp_path, monkeypatch):
    """A node started with COCAINE_INLINE=1 makes that the default of its apps, but an app whose
    manifest says `inline: false` runs its jobs on its pool all the same."""
    monkeypatch.setenv("COCAINE_INLINE", "1")
    app = thread_app(tmp_path)
    off = concurrent_manifest(app, {"inline": False})
    default = concurrent_manifest(app, {})
    node({"off": off, "default": default})
    pooled = threads_of_a_burst(zctx, off)
    assert b"MainThread" not in pooled, pooled
    assert threads_of_a_burst(zctx, default) == {b"MainThread"}
