"""The control commands of the CLI (issue 6) against a real node: deploy with a package,
list and info as JSON, schedule, reload, unschedule, rm; exit codes 0 (ok), 1 (an error
reply or no answer), 2 (bad usage)."""

import json
import time

from conftest import NativeClient, Subscriber, endpoint
from control import (  # noqa: F401 (cnode is a fixture)
    PACKAGED, PACKAGED_GREETING, cli, cli_json, cnode, collect_results, ok, packaged_manifest,
    versioned_app, wait_absent, wait_live, wait_port_free)


def unwrap(value):
    """The CLI may print a reply's `ok` value or the whole reply."""
    if isinstance(value, dict) and set(value) == {"ok"}:
        return value["ok"]
    return value


def failed(done, code):
    """The command exited 1 printing `error <code>`."""
    out = done.stdout + done.stderr
    return done.returncode == 1 and ("error %d" % code) in out


def test_cli_control_commands(cnode, zctx, tmp_path):
    n = cnode()
    native, pubsub = endpoint(), endpoint()
    manifest = packaged_manifest(native, tasks={"job": {"type": "manual-scheduler"}}, pubsub=pubsub,
                                 version=4)
    path = tmp_path / "greeter.json"
    path.write_text(json.dumps(manifest))

    # deploy: the app is named after the file; --package tars the folder.
    done = cli("deploy", str(path), "--package", str(PACKAGED), node=n, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    reply = NativeClient(zctx, native).call("hello", b"cli")
    assert reply.ok and reply.body == PACKAGED_GREETING + b", cli!", reply

    entries = unwrap(cli_json("list", node=n))
    assert [(e["app"], e["version"], e["origin"], e["state"]) for e in entries] == [
        ("greeter", 4, "store", "running")], entries
    assert entries == ok(n, "list")
    info = unwrap(cli_json("info", "greeter", node=n))
    assert info["app"] == "greeter" and info["engine"]["state"] == "running", info
    assert info["tasks"]["hello"] == {"type": "native-server", "endpoint": native}, info
    info = unwrap(cli_json("info", node=n))
    assert [a["app"] for a in info["apps"]] == ["greeter"], info
    done = cli("info", "greeter", node=n)
    assert done.returncode == 0 and "greeter" in done.stdout, (done.stdout, done.stderr)

    # schedule: the job runs about a second later and publishes its result.
    sub = Subscriber(zctx, pubsub, "greeter:")
    wait_live(sub, "greeter")
    done = cli("schedule", "greeter", "job", "--after", "1s", "from the cli", node=n)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert done.stdout.strip(), "schedule prints the job's id"
    collect_results(sub, [("greeter:job", "packaged ran:from the cli")], timeout=10)
    sub.close()

    # A job far ahead (--at in unix ms), unscheduled by the id schedule printed.
    at = int(time.time() * 1000) + 600_000
    done = cli("schedule", "greeter", "job", "--at", str(at), node=n)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    scheduled = ok(n, "info", app="greeter")["scheduled"]
    assert len(scheduled) == 1 and scheduled[0]["id"] in done.stdout, (scheduled, done.stdout)
    assert scheduled[0]["at"] == at and scheduled[0]["task"] == "job", scheduled
    done = cli("unschedule", scheduled[0]["id"], node=n)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert failed(cli("unschedule", scheduled[0]["id"], node=n), 404)

    # reload keeps it serving; an error reply exits 1 with its code.
    done = cli("reload", "greeter", node=n, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert NativeClient(zctx, native).call("hello", b"reloaded").ok
    done = cli("deploy", str(path), "--name", "clash", "--package", str(PACKAGED), node=n,
               timeout=60)
    assert failed(done, 409), (done.returncode, done.stdout, done.stderr)
    assert [e["app"] for e in ok(n, "list")] == ["greeter"]
    other = tmp_path / "other.json"
    other_native = endpoint()
    other.write_text(json.dumps(versioned_app(1, {"echo": {"type": "native-server",
                                                          "endpoint": other_native}})))
    done = cli("deploy", str(other), "--name", "renamed", node=n, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    assert sorted(e["app"] for e in ok(n, "list")) == ["greeter", "renamed"]
    assert NativeClient(zctx, other_native).call("echo", b"x").body == b"v1:x"

    # $COCAINE_NODE instead of --node.
    done = cli("list", env={"COCAINE_NODE": n.control})
    assert done.returncode == 0 and "greeter" in done.stdout, (done.stdout, done.stderr)

    # rm, then the errors: unknown apps, no node, bad usage.
    for app, ep in (("greeter", native), ("renamed", other_native)):
        done = cli("rm", app, node=n)
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
        wait_absent(n, app)
        wait_port_free(ep)
    assert failed(cli("rm", "greeter", node=n), 404)
    assert failed(cli("info", "greeter", node=n), 404)
    assert failed(cli("schedule", "greeter", "job", "--after", "1s", node=n), 404)
    done = cli("list", "--timeout", "0.5", node=endpoint())
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    for args in (["list", "--bogus"], ["schedule", "greeter", "job"],
                 ["schedule", "greeter", "job", "--after", "soon"], ["deploy"], ["rm"]):
        done = cli(*args, node=n)
        assert done.returncode == 2, (args, done.returncode, done.stdout, done.stderr)
    assert ok(n, "list") == []
