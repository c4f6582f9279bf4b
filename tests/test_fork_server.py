"""Python workers forked by their app version's fork server (docs/runtime.md, "Fork servers"):
the node still owns them, they share nothing they should not, a dead fork server is replaced,
a redeploy forks the new code, and apps that are not safe to fork, or opt out, are started
the ordinary way. Behaviour only: speed is scripts/bench-start's business."""

import json
import os
import re
import signal
import time

from conftest import NativeClient, Subscriber, endpoint, python_app
from control import cnode, deploy  # noqa: F401  (cnode is a fixture)


def start(node, engine, app_file="forkable.py"):
    """A node running the app with a fork server (opt-in: `"fork-server": true`), unless
    `engine` says otherwise."""
    engine = dict({"fork-server": True}, **engine)
    ep = endpoint()
    n = node({"fk": python_app(app_file, {"call": {"type": "native-server", "endpoint": ep}},
                               engine=engine)})
    return n, ep


def forked_pid(n, pid):
    return re.search(r"forked by its fork server \(pid %d\)" % pid, n.log) is not None


def forked_info(n, client, timeout=20.0):
    """The `info` of a worker the fork server forked. With `max-requests` 1 every call gets
    a new worker; the first ones are started the ordinary way while the fork server imports
    the app."""
    deadline = time.monotonic() + timeout
    while True:
        reply = client.call("info")
        assert reply.ok, reply
        info = json.loads(reply.body)
        if forked_pid(n, info["pid"]):
            return info
        assert time.monotonic() < deadline, "no forked worker; log tail:\n" + n.tail()


def reaped(pid, timeout=5.0):
    """Whether `pid` is gone entirely: exited and reaped, not a zombie."""
    deadline = time.monotonic() + timeout
    while os.path.exists("/proc/%d" % pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def server_pids(n):
    return [int(p) for p in re.findall(r"fk: fork server started \(pid (\d+)\)", n.log)]


def test_forked_workers_are_the_nodes_own_and_share_nothing(node, zctx):
    n, ep = start(node, {"pool-limit": 1, "max-requests": 1})
    client = NativeClient(zctx, ep)
    first = forked_info(n, client)
    # Adopted by the node, in a process group of its own (the node signals the group).
    assert first["ppid"] == n.pid, first
    assert first["pgid"] == first["pid"], first
    # Its standard streams and its channel, nothing of the fork server's.
    fds = first["fds"]
    assert sorted(fds) == ["0", "1", "2", "3"], fds
    assert fds["0"] == "/dev/null", fds
    assert fds["1"] == fds["2"] and fds["1"].startswith("pipe:"), fds
    assert fds["3"].startswith("socket:"), fds
    assert first["cwd"] == os.path.dirname(os.path.abspath(__file__)) + "/apps", first
    # Each worker its own random state, though both come from one process.
    second = forked_info(n, client)
    assert second["pid"] != first["pid"]
    assert second["random"] != first["random"], (first, second)
    assert second["worker"] != first["worker"]
    # A worker that used up its requests was reaped by the node, not left a zombie.
    assert reaped(first["pid"])
    client.close()


def test_a_forked_worker_the_node_kills_is_reaped(node, zctx):
    n, ep = start(node, {"pool-limit": 1, "max-requests": 2, "termination-timeout": 0.3})
    client = NativeClient(zctx, ep)
    info = forked_info(n, client)
    # The job outlives its timeout and ignores the cancel: the node kills the worker.
    reply = client.call("sleep", b"60", policy={"timeout": 200}, timeout=10)
    assert reply.code == 504, reply
    assert reaped(info["pid"], 10), n.tail()
    n.wait_for_log(r"fk: worker \S+ exited \(killed by signal 9\)|fk: worker \S+ exited \(signal 9",
                   timeout=5)
    again = client.call("info")
    assert again.ok, again
    assert json.loads(again.body)["pid"] != info["pid"]
    client.close()


def test_a_killed_fork_server_is_replaced(node, zctx):
    n, ep = start(node, {"pool-limit": 1, "max-requests": 1})
    client = NativeClient(zctx, ep)
    forked_info(n, client)
    first_server = server_pids(n)[-1]
    os.kill(first_server, signal.SIGKILL)
    n.wait_for_log(r"fk: fork server exited", timeout=10)
    assert reaped(first_server)
    # Workers keep coming, and once a new fork server is up they are forked again.
    deadline = time.monotonic() + 20
    while True:
        info = forked_info(n, client)
        servers = server_pids(n)
        if len(servers) >= 2 and servers[-1] != first_server and forked_pid(n, info["pid"]):
            if n.log.rfind("forked by its fork server (pid %d)" % info["pid"]) > \
                    n.log.rfind("fork server started (pid %d)" % servers[-1]):
                break
        assert time.monotonic() < deadline, n.tail()
    client.close()


def test_redeploy_forks_the_new_code(cnode, zctx, tmp_path):
    code = tmp_path / "app" / "versioned.py"
    code.parent.mkdir()
    source = (os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "forkable.py"))
    with open(source) as f:
        text = f.read()
    code.write_text(text)
    n = cnode()
    ep = endpoint()
    manifest = {"type": "python", "args": "local://%s" % code,
                "engine": {"pool-limit": 1, "max-requests": 1, "fork-server": True},
                "tasks": {"call": {"type": "native-server", "endpoint": ep}}}
    deploy(n, "fk", dict(manifest, version=1))
    client = NativeClient(zctx, ep)
    assert forked_info(n, client)["version"] == "one"
    old_server = server_pids(n)[-1]
    # Same path, new code: the new version's workers must not come from the old import.
    code.write_text(text.replace('VERSION = "one"', 'VERSION = "two"'))
    deploy(n, "fk", dict(manifest, version=2))
    info = forked_info(n, client)
    assert info["version"] == "two", info
    assert server_pids(n)[-1] != old_server
    assert reaped(old_server), "the old version's fork server is still running"
    for _ in range(3):
        assert json.loads(client.call("info").body)["version"] == "two"
    client.close()


def test_an_app_can_opt_out(node, zctx):
    n, ep = start(node, {"pool-limit": 1, "max-requests": 1, "fork-server": False})
    client = NativeClient(zctx, ep)
    for _ in range(2):
        info = json.loads(client.call("info").body)
        assert info["ppid"] == n.pid
    assert "fork server" not in n.log, n.log
    client.close()


def test_an_app_that_starts_a_thread_at_import_is_not_forked(node, zctx):
    n, ep = start(node, {"pool-limit": 1, "max-requests": 1}, app_file="thread_at_import.py")
    client = NativeClient(zctx, ep)
    deadline = time.monotonic() + 20
    while "started without a fork server" not in n.log:
        assert client.call("echo", b"x").body == b"x"
        assert time.monotonic() < deadline, n.tail()
    n.wait_for_log(r"fk: workers are started without a fork server: the app started 1 thread",
                   timeout=1)
    assert client.call("echo", b"y").body == b"y"
    assert "forked by its fork server" not in n.log
    client.close()


def test_every_forked_worker_that_exits_at_once_is_accounted_for(node, zctx):
    # Issue 12's lost exit: forked workers that exit right after their one request, many
    # times over and two at a time; the node must see every exit (the pool reports every
    # worker gone) and leave no process behind.
    ep, ps = endpoint(), endpoint()
    manifest = python_app("forkable.py", {"call": {"type": "native-server", "endpoint": ep}},
                          engine={"pool-limit": 2, "max-requests": 1, "fork-server": True},
                          pubsub={"endpoint": ps, "interval": 200})
    n = node({"fk": manifest})
    sub = Subscriber(zctx, ps, "fk:engine")
    sub.wait_for(lambda w, v: w[1] == "stats", timeout=5)
    clients = [NativeClient(zctx, ep) for _ in range(2)]
    forked_info(n, clients[0])  # from here on, workers are forked
    spawned, exited, pids = set(), set(), set()
    calls = 60
    for i in range(calls):
        # Two requests in flight: two workers exiting at about the same time.
        replies = [c.call("info") for c in clients] if i % 2 else [clients[i % 2].call("info")]
        for reply in replies:
            assert reply.ok, reply
            pids.add(json.loads(reply.body)["pid"])

    def track(words, value):
        if words[1] == "worker":
            (exited if value["event"] == "exited" else spawned).add(value["id"])
        elif words[1] == "stats":
            w = value["workers"]
            gone = w["starting"] + w["ready"] + w["draining"] == 0
            return gone and spawned and spawned <= exited
        return False

    sub.wait_for(track, timeout=15)
    forked = [pid for pid in pids if forked_pid(n, pid)]
    assert len(forked) >= calls // 2, (len(forked), n.tail())
    for pid in pids:
        assert reaped(pid), "worker %d is still there" % pid
    for c in clients:
        c.close()
    sub.close()
