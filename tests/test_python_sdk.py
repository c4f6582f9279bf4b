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
