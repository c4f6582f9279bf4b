"""Control endpoint (issue 6): deploy with a package, call, list, info, schedule, delete; and
malformed or refused control requests, each answered with the right error while the node
goes on."""

import base64
import json
import socket
import time

import pytest
import zmq

from conftest import NativeClient, app_args, endpoint
from control import (stored_revision,   # noqa: F401 (cnode is a fixture)
    CONTROL_LIMIT, PACKAGED, PACKAGED_GREETING, address_of, cli, cnode, ctl, deploy, error,
    host_port, ok, packaged_manifest, raw, request_frames, tar_package, versioned_app,
    wait_absent, wait_port_free, wait_state)


def subset(entry, expected):
    """`entry` restricted to the keys of `expected`."""
    return {k: entry.get(k, "<missing>") for k in expected}


def test_deploy_package_call_list_info_delete(cnode, zctx):
    n = cnode()
    assert ok(n, "list") == []
    native = endpoint()
    manifest = packaged_manifest(native, tasks={"job": {"type": "manual-scheduler"}}, version=3)
    package = tar_package(PACKAGED)
    reply = deploy(n, "pkg", manifest, package)
    assert reply == {"app": "pkg", "version": 3, "state": "running", "redeployed": False}, reply
    n.wait_for_log(r"pkg: started \(version 3\)")

    # Stored before the reply: the manifest as deployed and the unpacked package.
    stored = stored_revision(n.store, "pkg")
    assert json.loads((stored / "manifest.json").read_bytes()) == manifest
    for name in ("packaged_app.py", "packaged_helper.py", "greeting.txt"):
        assert (stored / "package" / name).read_bytes() == (PACKAGED / name).read_bytes(), name

    # `args` is relative to the package: the app imports its sibling and reads its data file.
    client = NativeClient(zctx, native)
    reply = client.call("hello", b"world")
    assert reply.ok and reply.body == PACKAGED_GREETING + b", world!", reply
    reply = client.call("", b"by task name")
    assert reply.ok and reply.body == PACKAGED_GREETING + b", by task name!", reply

    expected = {
        "app": "pkg", "version": 3, "origin": "store", "state": "running",
        "tasks": {"hello": {"type": "native-server", "endpoint": native},
                  "job": {"type": "manual-scheduler"}},
    }
    entries = ok(n, "list")
    assert len(entries) == 1 and subset(entries[0], expected) == expected, entries
    assert "error" not in entries[0], entries

    # A job far in the future, to see it in `info`; then unscheduled.
    before = int(time.time() * 1000)
    job = ok(n, "schedule", app="pkg", task="job", after=600_000,
             body=base64.b64encode(b"later").decode())
    assert set(job) == {"id", "at"} and isinstance(job["id"], str) and job["id"], job
    assert before + 600_000 <= job["at"] <= int(time.time() * 1000) + 600_000, job

    info = ok(n, "info")
    assert isinstance(info["uptime_ms"], int) and info["uptime_ms"] >= 0, info
    assert [a["app"] for a in info["apps"]] == ["pkg"], info
    assert subset(info["apps"][0], expected) == expected, info
    jobs = info["jobs"]
    assert {"queued", "in_flight", "scheduled"} <= set(jobs), info
    assert jobs["scheduled"] == 1 and jobs["queued"] == 0 and jobs["in_flight"] == 0, info

    info = ok(n, "info", app="pkg")
    assert subset(info, expected) == expected, info
    engine = info["engine"]
    assert engine["state"] == "running" and engine.get("reason") is None, engine
    assert engine["queue"] == 0, engine
    workers = engine["workers"]
    assert {"starting", "ready", "busy", "draining"} <= set(workers), engine
    assert all(isinstance(v, int) for v in workers.values()), engine
    assert workers["ready"] >= 1 and workers["busy"] == 0, engine  # the worker that answered
    assert engine["jobs"]["running"] == 0, engine
    hello = engine["tasks"]["hello"]
    assert (hello["accepted"], hello["completed"], hello["failed"]) == (2, 2, 0), engine
    assert engine["tasks"]["job"]["accepted"] == 0, engine
    assert info["scheduled"] == [{"id": job["id"], "task": "job", "at": job["at"]}], info

    assert ok(n, "unschedule", id=job["id"]) == {"id": job["id"]}
    error(n, "unschedule", 404, id=job["id"])
    assert ok(n, "info", app="pkg")["scheduled"] == []
    assert ok(n, "info")["jobs"]["scheduled"] == 0

    # The CLI finds the app by name through `info` and calls its native-server task.
    done = cli("call", "pkg", "hello", "cli", node=n)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert (PACKAGED_GREETING + b", cli!").decode() in done.stdout, done.stdout

    assert ok(n, "delete", app="pkg") == {"app": "pkg"}
    wait_absent(n, "pkg")
    message = error(n, "info", 404, app="pkg")
    assert "pkg" in message, message
    error(n, "delete", 404, app="pkg")
    assert ok(n, "list") == []
    assert [a["app"] for a in ok(n, "info")["apps"]] == []
    assert not stored.exists(), list(stored.iterdir())
    wait_port_free(native)
    client.close()

    done = cli("call", "pkg", node=n)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "error 404" in done.stdout + done.stderr, (done.stdout, done.stderr)

    # The shape of `info`: `last_error` is null while there has been none (checked last, so
    # a deviation here does not hide the checks above).
    assert "last_error" in engine and engine["last_error"] is None, engine


# -- malformed requests ------------------------------------------------------------------------

V = {"version": 1}

# (request JSON frame, words the message must hold); every one is a 400.
MALFORMED = [
    (b"{not json", ["not JSON"]),
    (b"\xff\xfe", ["not JSON"]),
    (b'{"version": 1, "action": "list"} trailing', ["not JSON"]),
    (b"[1, 2]", ["not a JSON object", "array"]),
    (b'"list"', ["not a JSON object"]),
    (b'{"version": 1, "action": "list", "action": "info"}', ["duplicate key", "action"]),
    ({"action": "list"}, ["missing key", "version"]),
    ({"version": 2, "action": "list"}, ["unsupported version 2"]),
    ({"version": "1", "action": "list"}, ["version"]),
    (V, ["missing key", "action"]),
    ({**V, "action": 7}, ["action"]),
    ({**V, "action": "deplyo"}, ['unknown action "deplyo"', 'did you mean "deploy"']),
    ({**V, "action": "lsit"}, ['did you mean "list"']),
    ({**V, "action": "delete"}, ["missing key", "app"]),
    ({**V, "action": "delete", "app": 5}, ["app"]),
    ({**V, "action": "delete", "ap": "x"}, ['unknown key "ap"', 'did you mean "app"']),
    ({**V, "action": "delete", "app": "a/b"}, ["a/b", "'/'"]),
    ({**V, "action": "list", "app": "x"}, ['unknown key "app"']),
    ({**V, "action": "info", "app": ["x"]}, ["app"]),
    ({**V, "action": "deploy", "app": "x", "manifest": "not an object"}, ["manifest"]),
    ({**V, "action": "schedule", "app": "x", "task": "t", "at": 1.5}, ["at", "fractional"]),
    ({**V, "action": "schedule", "app": "x", "task": "t", "at": -1}, ["at"]),
    ({**V, "action": "schedule", "app": "x", "task": "t", "at": 1, "after": 1}, ["exclusive"]),
    ({**V, "action": "schedule", "app": "x", "task": "t"}, ["at", "after"]),
    ({**V, "action": "schedule", "app": "x", "task": "", "after": 1}, ["task", "empty"]),
    ({**V, "action": "schedule", "app": "x", "task": "t", "after": 1, "body": "!!"},
     ["body", "base64"]),
    ({**V, "action": "list", "user": "me"}, ["signed", "ts"]),
]


@pytest.mark.parametrize("kind", [zmq.REQ, zmq.DEALER], ids=["req", "dealer"])
def test_malformed_requests(cnode, kind):
    n = cnode()
    for body, words in MALFORMED:
        reply = raw(n, body, kind=kind)
        assert "error" in reply and reply["error"]["code"] == 400, (body, reply)
        for word in words:
            assert word in reply["error"]["message"], (body, word, reply)
        assert ok(n, "list") == [], body

    # Binary frames an action does not take.
    reply = ctl(n, "list", b"extra", kind=kind)
    assert reply["error"]["code"] == 400 and "binary frame" in reply["error"]["message"], reply
    reply = ctl(n, "deploy", b"package", b"one too many", kind=kind, app="x",
                manifest=versioned_app(1, {"echo": {"type": "native-server",
                                                    "endpoint": endpoint()}}))
    assert reply["error"]["code"] == 400 and "binary frame" in reply["error"]["message"], reply
    assert ok(n, "list") == []

    # A frame over the limit: 413 naming its size and the limit, whichever frame it is.
    big = b" " * (CONTROL_LIMIT + 1)
    deploy_json = json.dumps({**V, "action": "deploy", "app": "x", "manifest": {}}).encode()
    for frames in ([big], [deploy_json, big]):
        reply = json.loads(request_frames(address_of(n), frames, timeout=30, kind=kind)[0])
        assert reply["error"]["code"] == 413, reply
        assert str(len(big)) in reply["error"]["message"], reply
        assert str(CONTROL_LIMIT) in reply["error"]["message"], reply
    assert ok(n, "list") == []
    n.wait_for_log(r"control endpoint listening on " + n.control)
    assert "panicked" not in n.log


def test_empty_and_undelimited_requests(cnode, zctx):
    n = cnode()
    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(n.control)
    dealer.send_multipart([b""])
    dealer.setsockopt(zmq.RCVTIMEO, 10_000)
    frames = dealer.recv_multipart()
    assert frames[0] == b"" and len(frames) == 2, frames
    reply = json.loads(frames[1])
    assert reply["error"]["code"] == 400 and "empty request" in reply["error"]["message"], reply
    # No delimiter at all: a 400 back on the routing frame (docs/control.md).
    dealer.send_multipart([json.dumps({**V, "action": "list"}).encode()])
    frames = dealer.recv_multipart()
    assert frames[-1] and len(frames) <= 2 and frames[:-1] in ([], [b""]), frames
    reply = json.loads(frames[-1])
    assert reply["error"]["code"] == 400 and "delimiter" in reply["error"]["message"], reply
    assert ok(n, "list") == []
    dealer.close(0)


def test_refused_requests(cnode, zctx):
    """Well-formed requests the node refuses: unknown apps and tasks, bad manifests,
    conflicts, actions this node does not offer, signatures."""
    cmd_native = endpoint()
    n = cnode(manifests={"cmd": versioned_app(1, {"echo": {"type": "native-server",
                                                          "endpoint": cmd_native}})})
    native = endpoint()
    good = versioned_app(1, {"echo": {"type": "native-server", "endpoint": native},
                             "job": {"type": "manual-scheduler"}})

    # A bad manifest: 400 naming the key (and the app), nothing stored, nothing listed.
    bad = dict(good, engine={"pool-limt": 3})
    message = error(n, "deploy", 400, app="typo", manifest=bad)
    assert "engine.pool-limt" in message and "pool-limit" in message, message
    no_tasks = {k: v for k, v in good.items() if k != "tasks"}
    message = error(n, "deploy", 400, app="typo", manifest=no_tasks)
    assert "tasks" in message, message
    message = error(n, "deploy", 400, app="typo",
                    manifest=dict(good, tasks={"echo": {"type": "native-server", "endpoint": 5}}))
    assert "tasks.echo.endpoint" in message, message
    assert not (n.store / "apps" / "typo").exists()
    assert [e["app"] for e in ok(n, "list")] == ["cmd"]

    # Unknown apps and jobs.
    for action, args in [("delete", {}), ("reload", {}), ("info", {})]:
        assert "nosuch" in error(n, action, 404, app="nosuch", **args)
    error(n, "schedule", 404, app="nosuch", task="job", after=10)
    error(n, "unschedule", 404, id="nosuch")

    deploy(n, "app", good)
    error(n, "schedule", 404, app="app", task="nosuch", after=10)
    message = error(n, "schedule", 400, app="app", task="echo", after=10)
    assert "manual-scheduler" in message, message

    # Conflicts: an endpoint another app holds; a name given on the command line.
    message = error(n, "deploy", 409, app="other",
                    manifest=versioned_app(1, {"echo": {"type": "native-server",
                                                        "endpoint": native}}))
    assert str(host_port(native)[1]) in message, message
    error(n, "deploy", 409, app="cmd", manifest=good)
    assert sorted(e["app"] for e in ok(n, "list")) == ["app", "cmd"]

    # `peers` with discovery off: this node and no peers (tests/test_cluster_membership.py
    # has the cluster). `fetch` is for a later issue.
    peers = ok(n, "peers")
    assert peers["peers"] == [] and peers["discovery"] is None, peers
    message = error(n, "fetch", 500, app="app")
    assert "not available" in message, message
    # `keys` answers (docs/security.md): no key folder, no users.
    keys = ok(n, "keys")
    assert keys["users"] == [] and keys["control_auth"] == "optional", keys

    # A signed request: no key for this user (and a bad nonce), so refused.
    body = json.dumps({**V, "action": "list", "user": "me", "ts": int(time.time() * 1000),
                       "nonce": "n1"}).encode()
    reply = raw(n, body, b"signature")
    assert reply["error"]["code"] == 401, reply

    # Everything still runs.
    assert NativeClient(zctx, native).call("echo", b"x").body == b"v1:x"
    assert NativeClient(zctx, cmd_native).call("echo", b"y").body == b"v1:y"
    entries = ok(n, "list")
    assert {e["app"]: (e["origin"], e["state"]) for e in entries} == {
        "app": ("store", "running"), "cmd": ("command-line", "running")}, entries


def test_deploy_that_cannot_start_is_stored_as_failed(cnode, zctx):
    n = cnode()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = "tcp://127.0.0.1:%d" % taken.getsockname()[1]
        manifest = versioned_app(1, {"echo": {"type": "native-server", "endpoint": busy}},
                                 manifest_version=1)
        message = error(n, "deploy", 500, app="blocked", manifest=manifest)
        assert busy in message, message
        entry = wait_state(n, "blocked", "failed")
        assert entry["origin"] == "store" and busy in entry["error"], entry
        assert (stored_revision(n.store, "blocked") / "manifest.json").exists()
    # The port is free now: reload starts the stored manifest.
    reply = ok(n, "reload", app="blocked", timeout=30)
    assert (reply["app"], reply["version"], reply["state"]) == ("blocked", 1, "running"), reply
    entry = wait_state(n, "blocked")
    assert "error" not in entry, entry
    assert NativeClient(zctx, busy).call("echo", b"x").body == b"v1:x"


def test_control_endpoint_that_cannot_bind_stops_the_node(cnode):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = "tcp://127.0.0.1:%d" % taken.getsockname()[1]
        n = cnode(control=busy, expect_up=False)
    assert n.proc.returncode == 1, (n.proc.returncode, n.tail())
    assert busy in n.log, n.log


def test_control_none_runs_without_an_endpoint(cnode, zctx):
    ep = endpoint()
    n = cnode(control="none", manifests={"solo": versioned_app(1, {"echo": {
        "type": "native-server", "endpoint": ep}})})
    assert NativeClient(zctx, ep).call("echo", b"x").body == b"v1:x"
    assert "control endpoint listening" not in n.log, n.log


def test_broken_app_is_reported(cnode, zctx):
    """An app whose code cannot load deploys (its endpoints are up) but breaks on its first
    job; `list` and `info` say so with the reason, and the node's other apps go on."""
    n = cnode()
    bad_ep, good_ep = endpoint(), endpoint()
    deploy(n, "good", versioned_app(1, {"echo": {"type": "native-server", "endpoint": good_ep}}))
    deploy(n, "broken", {
        "type": "python", "args": app_args("broken.py"),
        "engine": {"restart-intensity": 1, "restart-period": 30, "startup-timeout": 5},
        "tasks": {"echo": {"type": "native-server", "endpoint": bad_ep}},
    })
    reply = NativeClient(zctx, bad_ep).call("echo", b"x", timeout=15)
    assert reply.code in (500, 503), reply
    why = "No module named 'nonexistent_module_for_e2e'"
    entry = wait_state(n, "broken", "broken")
    assert why in entry.get("error", ""), entry
    info = ok(n, "info", app="broken")
    assert info["state"] == "broken" and why in info["error"], info
    engine = info["engine"]
    assert engine["state"] == "broken" and why in engine["reason"], engine
    assert engine["last_error"]["code"] == 500 and why in engine["last_error"]["message"], engine
    good = [e for e in ok(n, "list") if e["app"] == "good"]
    assert good[0]["state"] == "running" and "error" not in good[0], good
    assert NativeClient(zctx, good_ep).call("echo", b"y").body == b"v1:y"
