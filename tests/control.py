"""Helpers for the control-plane tests (issue 6): a control client, package tars, nodes that
run with a store and a control endpoint only, and waits on ports and publications.

Import what you need (fixtures included) from here in a test module:

    from control import cnode, ctl, ok, error, deploy, tar_package

Like conftest.py, everything waits for an event with a deadline; polls (of `list`, of a port)
stand in where the node gives no event to wait for.
"""

import base64
import errno
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import zmq

from conftest import (APPS, PYTHON_SDK, Node, app_args, cocaine_bin, endpoint, problems_after,
                      recv_multipart)

# The node's default limit on one frame of any message (`max-message`, docs/protocol.md).
CONTROL_LIMIT = 64 * 1024 * 1024

_ctx = zmq.Context.instance()


# -- control client ----------------------------------------------------------------------------


def stored_revision(store, app):
    """The folder of an app's current revision in a node's store: `apps/<app>/r<N>/`, N read
    from `apps/<app>/current` (adapters/store/README.md)."""
    folder = Path(store) / "apps" / app
    return folder / ("r%d" % int((folder / "current").read_text().strip()))


def address_of(node):
    """The control endpoint of a Node (its `control` attribute) or an address as is."""
    return node if isinstance(node, str) else node.control


def request_frames(address, frames, timeout=10.0, kind=zmq.DEALER):
    """Sends the frames after the empty delimiter (a REQ adds it itself) and returns the
    reply's frames after the delimiter."""
    sock = _ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    try:
        if kind == zmq.DEALER:
            sock.send_multipart([b""] + list(frames))
            reply = recv_multipart(sock, timeout)
            assert reply[:1] == [b""], "a control reply starts with the delimiter: %r" % (reply,)
            return reply[1:]
        sock.send_multipart(list(frames))
        return recv_multipart(sock, timeout)
    finally:
        sock.close(0)


def raw(node, body, *frames, timeout=10.0, kind=zmq.DEALER):
    """Sends `body` (a dict, sent as JSON, or bytes as they are) and any binary `frames`;
    returns the reply parsed: `{"ok": ...}` or `{"error": {"code", "message"}}`."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    reply = request_frames(address_of(node), [body, *frames], timeout, kind)
    assert len(reply) == 1, "a control reply is one JSON frame: %r" % (reply,)
    parsed = json.loads(reply[0])
    assert isinstance(parsed, dict) and len(parsed) == 1 and set(parsed) <= {"ok", "error"}, parsed
    if "error" in parsed:
        err = parsed["error"]
        assert set(err) == {"code", "message"}, parsed
        assert isinstance(err["code"], int), parsed
        assert isinstance(err["message"], str) and err["message"], parsed
    return parsed


def ctl(node, action, *frames, timeout=10.0, kind=zmq.DEALER, **args):
    """One control request `{"version": 1, "action": action, **args}`; the parsed reply."""
    return raw(node, dict(version=1, action=action, **args), *frames, timeout=timeout, kind=kind)


def ok(node, action, *frames, timeout=10.0, **args):
    """`ctl` that must succeed; returns the `ok` value."""
    reply = ctl(node, action, *frames, timeout=timeout, **args)
    assert "ok" in reply, "%s %r failed: %r%s" % (action, args, reply, _tail(node))
    return reply["ok"]


def error(node, action, code, *frames, timeout=10.0, **args):
    """`ctl` that must fail with `code`; returns the error message."""
    reply = ctl(node, action, *frames, timeout=timeout, **args)
    assert "error" in reply and reply["error"]["code"] == code, (
        "%s %r: expected error %d, got %r%s" % (action, args, code, reply, _tail(node)))
    return reply["error"]["message"]


def _tail(node):
    return "" if isinstance(node, str) else "\nlog tail:\n" + node.tail(30)


def deploy(node, app, manifest, package=None, timeout=60.0):
    """Deploys over control (the package, bytes of a tar, as the frame after the JSON) and
    returns the `ok` value; deploy answers once the app has started."""
    frames = [package] if package is not None else []
    return ok(node, "deploy", *frames, timeout=timeout, app=app, manifest=manifest)


def schedule(node, app, task, body=b"", after=None, at=None):
    args = {"app": app, "task": task, "body": base64.b64encode(body).decode()}
    if after is not None:
        args["after"] = after
    if at is not None:
        args["at"] = at
    return ok(node, "schedule", **args)


def entry(node, app):
    """The `list` entry of `app`, or None."""
    found = [e for e in ok(node, "list") if e["app"] == app]
    assert len(found) <= 1, found
    return found[0] if found else None


def wait_list(node, predicate, timeout=20.0, what="the list to change"):
    """Polls `list` until `predicate(entries)` holds; returns the entries."""
    deadline = time.monotonic() + timeout
    while True:
        entries = ok(node, "list")
        if predicate(entries):
            return entries
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; list: %r%s"
                                 % (what, entries, _tail(node)))
        time.sleep(0.05)


def wait_state(node, app, state="running", timeout=20.0):
    """Polls `list` until `app` is in `state`; returns its entry."""
    entries = wait_list(node, lambda es: any(e["app"] == app and e["state"] == state for e in es),
                        timeout, "%s to be %s" % (app, state))
    return next(e for e in entries if e["app"] == app)


def wait_absent(node, app, timeout=20.0):
    wait_list(node, lambda es: all(e["app"] != app for e in es), timeout, "%s to be gone" % app)


# -- manifests and packages --------------------------------------------------------------------


def versioned_app(version, tasks, engine=None, pubsub=None, manifest_version=None):
    """A manifest for tests/apps/reply_v<version>.py (replies `b"v<version>:" + request`)."""
    manifest = {"type": "python", "args": app_args("reply_v%d.py" % version), "tasks": tasks}
    if manifest_version is not None:
        manifest["version"] = manifest_version
    if engine:
        manifest["engine"] = engine
    if pubsub:
        if isinstance(pubsub, str):
            pubsub = {"endpoint": pubsub, "interval": 200}
        manifest["pubsub"] = pubsub
    return manifest


def tar_package(folder=None, files=None):
    """A package: a tar archive of `folder` (paths relative to it; caches left out) plus
    `files` (name -> bytes or str), built in memory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if folder is not None:
            folder = Path(folder)
            for path in sorted(folder.rglob("*")):
                rel = path.relative_to(folder)
                if "__pycache__" in rel.parts or path.suffix == ".pyc":
                    continue
                tar.add(str(path), arcname=str(rel), recursive=False)
        for name, data in (files or {}).items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


PACKAGED = APPS / "packaged"
PACKAGED_GREETING = b"hello from the package"


def packaged_manifest(native, tasks=None, pubsub=None, version=None):
    """The manifest of tests/apps/packaged, its `args` relative to the package."""
    manifest = {
        "type": "python",
        "args": "local://packaged_app.py",
        "tasks": {"hello": {"type": "native-server", "endpoint": native}, **(tasks or {})},
    }
    if pubsub:
        manifest["pubsub"] = {"endpoint": pubsub, "interval": 200}
    if version is not None:
        manifest["version"] = version
    return manifest


# -- ports -------------------------------------------------------------------------------------


def host_port(address):
    host, port = address[len("tcp://"):].rsplit(":", 1)
    return host, int(port)


def port_state(address):
    """"listening" if a TCP connect succeeds; "free" if it is refused and a new listener can
    be bound there; anything else describes why neither holds."""
    host, port = host_port(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        code = s.connect_ex((host, port))
    if code == 0:
        return "listening"
    if code != errno.ECONNREFUSED:
        return "connect failed: %s" % os.strerror(code)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Connections the node closed may linger in TIME_WAIT on that port; they do not
        # make it busy for a listener.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen()
        except OSError as e:
            return "bind failed: %s" % e
    return "free"


def wait_port_free(address, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        state = port_state(address)
        if state == "free":
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s is not free after %.0fs: %s" % (address, timeout, state))
        time.sleep(0.05)


# -- pubsub ------------------------------------------------------------------------------------


def result_of(words, value):
    """(app:source, value) of a `result` publication, else None."""
    return (words[0], value) if len(words) == 4 and words[1] == "result" else None


def wait_live(sub, app, timeout=10.0):
    """Waits for an engine publication of `app` (stats come every pubsub interval): from then
    on the subscription is live and nothing published is missed."""
    sub.wait_for(lambda w, v: w[0] == "%s:engine" % app, timeout)


def collect_results(sub, want, timeout=15.0):
    """Receives publications until every (app:source, value) in `want` has been seen; returns
    the list of every result publication received, in order."""
    seen = []
    missing = list(want)
    deadline = time.monotonic() + timeout
    while missing:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("results %r not published within %.0fs; got %r"
                               % (missing, timeout, seen))
        try:
            words, value = sub.recv(remaining)
        except TimeoutError:
            continue
        got = result_of(words, value)
        if got is None:
            continue
        seen.append(got)
        if got in missing:
            missing.remove(got)
    return seen


# -- the CLI -----------------------------------------------------------------------------------


def cli(*args, node=None, timeout=30.0, env=None):
    """Runs `cocaine ARGS... [--node N]`; returns the CompletedProcess (text output)."""
    argv = [cocaine_bin(), *args]
    if node is not None:
        argv += ["--node", address_of(node)]
    run_env = dict(os.environ)
    run_env.pop("COCAINE_NODE", None)
    run_env.update(env or {})
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=run_env)


def cli_json(*args, node=None):
    """`cocaine ... --json` that must exit 0; its standard output parsed."""
    done = cli(*args, "--json", node=node)
    assert done.returncode == 0, (args, done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


# -- nodes with a store and a control endpoint -------------------------------------------------


def store_jobs(store):
    """The files of the store's `schedule/` folder (temporaries, named `.*`, left out)."""
    folder = Path(store) / "schedule"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def kill9(n):
    """SIGKILL to the node process alone (its workers are left to notice)."""
    n.signalled = True
    n.expect_clean = False
    n.sample_workers()
    os.kill(n.pid, signal.SIGKILL)
    assert n.wait_exit(10) is not None, "the node survived SIGKILL"


@pytest.fixture
def cnode(runtime, tmp_path):
    """Factory: `cnode(store=None, control=None, manifests=(), watch=None, extra_args=())`
    starts `cocaine node --store S --control C` (a fresh store and a free endpoint unless
    given, so a later node can reuse a store and an endpoint) and waits for
    `node is up: every app started`. The Node gets `control` and `store` attributes.

    At teardown every node still running gets SIGTERM and must exit 0; no node may have
    panicked and no worker of any node may remain."""
    started = []
    counter = [0]

    def start(store=None, control=None, manifests=(), watch=None, extra_args=(), expect_up=True,
              timeout=30.0):
        counter[0] += 1
        store = Path(store) if store is not None else tmp_path / ("cstore%d" % counter[0])
        control = control or endpoint()
        paths = []
        if manifests:
            folder = tmp_path / ("cnode%d" % counter[0])
            folder.mkdir()
            for name, manifest in dict(manifests).items():
                path = folder / ("%s.json" % name)
                path.write_text(json.dumps(manifest, indent=1))
                paths.append(str(path))
        argv = [
            cocaine_bin(), "node", "--log-level", "debug", "--runtime", runtime,
            "--python-path", str(PYTHON_SDK), "--store", str(store), "--control", control,
            *(["--watch", str(watch)] if watch is not None else []), *extra_args, *paths,
        ]
        n = Node(argv, {}, dict(manifests))
        n.control = control
        n.store = store
        n.expect_clean = expect_up
        started.append(n)
        if expect_up:
            n.wait_for_log(r"node is up: every app started", timeout)
        elif n.wait_exit(timeout) is None:
            raise AssertionError("the node did not exit; log tail:\n" + n.tail())
        return n

    yield start

    problems = []
    for n in started:
        problems.extend(problems_after(n))
        # (A killed node's run folder is removed by problems_after.)
    if problems:
        pytest.fail("\n\n".join(problems))
