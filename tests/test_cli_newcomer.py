"""What a new user meets first (issue 13), end to end: a manifest named without a folder,
code that is not there, a node given manifests beside a node run as a service, commands with
no node to talk to, `cocaine call` on both request-reply task types, the log's lines, the run
folders of killed nodes, and `cocaine watch` without the engine's stats."""

import json
import os
import re
import shutil
import socket
import subprocess
import time

from conftest import (APPS, PYTHON_SDK, NativeClient, Node, cocaine_bin, endpoint,
                      problems_after, python_app, run_folder)
from control import (  # noqa: F401 (cnode is a fixture)
    cli, cnode, deploy, kill9, ok)

MISSING = "local:///path/to/application/__init__.py"


def run_cocaine(*args, cwd=None, timeout=60):
    return subprocess.run([cocaine_bin(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def basic_app(tasks, pubsub=None):
    return python_app("basic.py", tasks, pubsub=pubsub)


# -- item 1: relative args, missing code -------------------------------------------------------


def test_a_manifest_named_without_a_folder_runs_and_binds_no_control(runtime, tmp_path, zctx):
    shutil.copy(APPS / "basic.py", tmp_path / "app.py")
    native = endpoint()
    manifest = {"type": "python", "args": "local://app.py",
                "tasks": {"echo": {"type": "native-server", "endpoint": native}}}
    (tmp_path / "upper.json").write_text(json.dumps(manifest))
    argv = [cocaine_bin(), "node", "--runtime", runtime, "--python-path", str(PYTHON_SDK),
            "upper.json"]
    n = Node(argv, {}, {"upper": manifest}, cwd=str(tmp_path))
    n.expect_clean = True
    try:
        n.wait_for_log(r"node is up: every app started", 30)
        reply = NativeClient(zctx, native).call("echo", b"relative")
        assert reply.ok and reply.body == b"relative", reply
        # A node given manifests runs just them: no control endpoint, no store.
        assert "control endpoint" not in n.log, n.log
    finally:
        problems = problems_after(n)
    assert not problems, problems


def test_code_that_is_not_there_is_refused_at_start(runtime, tmp_path):
    manifest = {"type": "python", "args": MISSING,
                "tasks": {"echo": {"type": "native-server", "endpoint": endpoint()}}}
    (tmp_path / "app2012.json").write_text(json.dumps(manifest))
    done = run_cocaine("node", "--runtime", runtime, "app2012.json", cwd=str(tmp_path))
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert 'app "app2012": args: %s does not exist' % MISSING in done.stderr, done.stderr
    assert "node is up" not in done.stderr
    relative = dict(manifest, args="local://nope.py")
    (tmp_path / "rel.json").write_text(json.dumps(relative))
    done = run_cocaine("node", "--runtime", runtime, "rel.json", cwd=str(tmp_path))
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "args: local://nope.py (%s) does not exist" % (tmp_path / "nope.py") in done.stderr, \
        done.stderr


def test_deploy_checks_before_sending(cnode, tmp_path):
    n = cnode()
    package = tmp_path / "package"
    package.mkdir()
    shutil.copy(APPS / "basic.py", package / "app.py")
    cases = [
        ({"args": MISSING}, [], "args: %s does not exist" % MISSING),
        ({"args": "local://nope.py"}, ["--package", str(package)],
         "does not exist in the package"),
        ({"args": "local://app.py", "tasks": {"echo": {"type": "native-server",
                                                        "endpoint": "tcp://127.0.0.1:99999"}}},
         ["--package", str(package)], 'port "99999"'),
        ({"args": "local://app.py", "engine": {"pool-limt": 2}}, ["--package", str(package)],
         "pool-limt"),
    ]
    for i, (changes, extra, message) in enumerate(cases):
        manifest = dict({"type": "python", "args": "",
                         "tasks": {"echo": {"type": "native-server", "endpoint": endpoint()}}},
                        **changes)
        path = tmp_path / ("bad%d.json" % i)
        path.write_text(json.dumps(manifest))
        done = cli("deploy", str(path), *extra, node=n)
        assert done.returncode == 2, (message, done.returncode, done.stderr)
        assert message in done.stderr, (message, done.stderr)
    assert ok(n, "list") == [], "nothing was deployed"


def test_no_node_is_said_at_once(tmp_path):
    nobody = endpoint()
    manifest = tmp_path / "echo.json"
    manifest.write_text(json.dumps(basic_app({"echo": {"type": "native-server",
                                                       "endpoint": endpoint()}})))
    started = time.monotonic()
    for args in (["list"], ["deploy", str(manifest)], ["call", "echo", "hi"]):
        done = run_cocaine(*args, "--node", nobody, "--timeout", "600")
        assert done.returncode == 1, (args, done.returncode, done.stderr)
        assert "nothing listens at %s" % nobody in done.stderr, (args, done.stderr)
    assert time.monotonic() - started < 600
    done = run_cocaine("list", "--node", "tcp://127.0.0.1:99999")
    assert done.returncode == 2 and "99999" in done.stderr, (done.returncode, done.stderr)


# -- item 4: the control endpoint in use -------------------------------------------------------


def test_a_control_endpoint_in_use_is_said_once_with_a_hint(cnode, node):
    first = cnode()
    second = node({}, expect_up=False, extra_args=["--control", first.control])
    assert second.proc.returncode != 0
    bind_errors = [line for line in second.lines if "cannot bind the control endpoint" in line]
    assert len(bind_errors) == 1, second.log
    assert "--control" in second.log.split(bind_errors[0], 1)[1], second.log
    assert "node is up" not in second.log


def test_an_app_bind_error_is_said_once(node):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = "tcp://127.0.0.1:%d" % taken.getsockname()[1]
        n = node({"clash": basic_app({"echo": {"type": "native-server", "endpoint": busy}})},
                 expect_up=False)
    assert n.proc.returncode != 0
    assert len([line for line in n.lines if busy in line]) == 1, n.log


# -- item 7: cocaine call ----------------------------------------------------------------------


def test_call_reaches_both_request_reply_tasks(cnode):
    n = cnode()
    native, zeromq = endpoint(), endpoint()
    deploy(n, "both", basic_app({"echo": {"type": "native-server", "endpoint": native},
                                 "zecho": {"type": "zeromq-server", "endpoint": zeromq}}))
    deploy(n, "zonly", basic_app({"zecho": {"type": "zeromq-server", "endpoint": endpoint()}}))

    def call(*args):
        return cli("call", *args, node=n)

    # The event is optional; the reply ends its line; --raw gives the bytes as they came.
    done = call("both", "hi")
    assert (done.returncode, done.stdout) == (0, "hi\n"), (done.stdout, done.stderr)
    assert call("both", "--raw", "hi").stdout == "hi"
    assert call("both", "--event", "stream_echo", "x").stdout == "echo:x\n"
    assert call("both", "echo", "old form").stdout == "old form\n"
    assert call("both", "-e", "echo").stdout == ""
    # zeromq-server: chosen with --task, or the app's only request-reply task; each chunk a
    # line, or the exact bytes with --raw.
    done = call("both", "--task", "zecho", "hi")
    assert (done.returncode, done.stdout) == (0, "hi\n|\nHI\n"), (done.stdout, done.stderr)
    assert call("zonly", "--raw", "ab").stdout == "ab|AB"
    done = run_cocaine("call", zeromq, "--protocol", "zeromq-server", "--raw", "x")
    assert (done.returncode, done.stdout) == (0, "x|X"), (done.stdout, done.stderr)
    # One error format: the answer's code and message, whatever the protocol.
    done = call("zonly", "boom")
    assert done.returncode == 1 and done.stderr.startswith("error 502: "), done.stderr
    done = call("both", "--event", "nope")
    assert done.returncode == 1 and done.stderr.startswith("error 404: "), done.stderr
    done = call("nosuch")
    assert done.returncode == 1 and done.stderr.startswith("error 404: "), done.stderr
    done = call("both", "--task", "zecho", "--event", "x")
    assert done.returncode == 2 and done.stderr.startswith("cocaine call: "), done.stderr


# -- item 8: log lines -------------------------------------------------------------------------

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d (ERROR|WARN |INFO |DEBUG) \S")


def test_log_lines_are_rfc3339_and_in_order(node):
    n = node({"app": basic_app({"echo": {"type": "native-server", "endpoint": endpoint()}})})
    n.stop()
    assert n.lines and all(TEXT_LINE.match(line) for line in n.lines), n.log
    started = [i for i, line in enumerate(n.lines) if "app: started" in line]
    up = [i for i, line in enumerate(n.lines) if "node is up" in line]
    assert len(started) == 1 and len(up) == 1 and started[0] < up[0], n.log


def test_log_lines_as_json(node):
    n = node({"app": basic_app({"echo": {"type": "native-server", "endpoint": endpoint()}})},
             extra_args=["--log-format", "json"])
    n.stop()
    entries = [json.loads(line) for line in n.lines]
    assert all(set(e) == {"time", "level", "message"} for e in entries), entries
    assert all(TEXT_LINE.match("%s INFO  x" % e["time"]) for e in entries), entries
    messages = [e["message"] for e in entries]
    assert messages.index("app: started (version 0)") < messages.index(
        "node is up: every app started"), messages


# -- item 9: run folders -----------------------------------------------------------------------


def test_a_killed_nodes_run_folder_is_removed_by_the_next(cnode):
    first = cnode()
    folder = run_folder(first.pid)
    assert os.path.isdir(folder), folder
    kill9(first)
    assert os.path.isdir(folder), "SIGKILL leaves the folder"
    second = cnode()
    second.wait_for_log(re.escape("removed %s" % folder))
    assert not os.path.exists(folder)
    own = run_folder(second.pid)
    assert os.path.isdir(own)
    assert second.stop() == 0
    assert not os.path.exists(own), "a node removes its own run folder at exit"


# -- item 10: cocaine watch --------------------------------------------------------------------


def test_watch_shows_app_messages_and_stats_on_request(node):
    pubsub = endpoint()
    node({"pub": basic_app({"tick": {"type": "recurring-timer", "interval": 300}},
                           pubsub={"endpoint": pubsub, "interval": 200})})
    done = run_cocaine("watch", pubsub, "--count", "6", timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 6, lines
    assert not [line for line in lines if line.startswith("pub:engine stats")], lines
    assert [line for line in lines if line.startswith("pub:tick ")], lines
    done = run_cocaine("watch", pubsub, "--stats", "pub:engine stats", "--count", "1",
                       timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("pub:engine stats "), done.stdout
