"""The app store (issue 6): a node killed with SIGKILL comes back with its apps and its
scheduled jobs, each job running exactly once; a corrupt manifest in the store fails that
app alone."""

import json
import time

from conftest import NativeClient, Subscriber, endpoint
from control import (stored_revision, PACKAGED, PACKAGED_GREETING, cli, cnode, collect_results, deploy,  # noqa: F401
                     error, kill9, ok, packaged_manifest, schedule, store_jobs, tar_package,
                     versioned_app, wait_absent, wait_live, wait_state)

# The jobs are due this long after they are scheduled: time enough to kill the node, start
# another and see its pubsub live before they run.
AFTER_MS = 5000
# This one comes due before the node is started again.
DOWN_MS = 1000


def scheduled_app(native, pubsub):
    return versioned_app(1, {"echo": {"type": "native-server", "endpoint": native},
                             "job": {"type": "manual-scheduler"},
                             "append": {"type": "manual-scheduler"}}, pubsub=pubsub,
                         manifest_version=1)


def test_kill9_restart_keeps_apps_and_runs_jobs_once(cnode, zctx, tmp_path):
    eps = {name: {"native": endpoint(), "pubsub": endpoint()} for name in ("sa", "sb", "sc")}
    first = cnode()
    for name in ("sa", "sb"):
        deploy(first, name, scheduled_app(eps[name]["native"], eps[name]["pubsub"]))
    deploy(first, "sc", packaged_manifest(eps["sc"]["native"], pubsub=eps["sc"]["pubsub"]),
           tar_package(PACKAGED))
    jobs = {
        "sa": schedule(first, "sa", "job", b"alpha", after=AFTER_MS),
        "sb": schedule(first, "sb", "job", b"beta", after=AFTER_MS + 500),
    }
    # A third job comes due while no node runs; it appends a line to a file, a trace that
    # does not depend on a subscriber being there when it runs.
    trace = tmp_path / "trace.txt"
    down = schedule(first, "sa", "append", json.dumps({"path": str(trace), "line": "due"}).encode(),
                    after=DOWN_MS)
    assert len({jobs["sa"]["id"], jobs["sb"]["id"], down["id"]}) == 3, (jobs, down)
    assert store_jobs(first.store) == sorted(j["id"] + ".json" for j in [*jobs.values(), down])
    scheduled_at = time.time()

    # Subscribers first: they reconnect to the next node's pubsub by themselves.
    subs = {name: Subscriber(zctx, eps[name]["pubsub"], "%s:" % name) for name in ("sa", "sb")}
    kill9(first)
    assert not trace.exists()
    # Waiting for a time, not for an event: the job must come due while no node runs.
    while time.time() * 1000 < down["at"] + 200:
        time.sleep(0.02)

    second = cnode(store=first.store, control=first.control)
    for name in ("sa", "sb", "sc"):
        e = wait_state(second, name)
        assert e["origin"] == "store" and e["version"] == (0 if name == "sc" else 1), e
    for name, sub in subs.items():
        wait_live(sub, name)
        info = ok(second, "info", app=name)
        # The job that came due while the node was down has run, or is about to.
        scheduled = [j for j in info["scheduled"] if j["id"] != down["id"]]
        assert scheduled == [{"id": jobs[name]["id"], "task": "job", "at": jobs[name]["at"]}], info
    assert time.time() < scheduled_at + AFTER_MS / 1000, (
        "the restarted node took too long to come up for this test to see the jobs run")

    # Both jobs run, after their time.
    seen = {name: collect_results(sub, [("%s:job" % name, "v1 ran:%s" % body)],
                                  timeout=AFTER_MS / 1000 + 10)
            for (name, sub), body in zip(subs.items(), ("alpha", "beta"))}
    assert time.time() * 1000 >= jobs["sb"]["at"]
    # A marker job scheduled now runs after any duplicate of the restored ones would have:
    # once it is published, each restored job has been published exactly once.
    for (name, sub), body in zip(subs.items(), ("alpha", "beta")):
        schedule(second, name, "job", b"marker", after=0)
        seen[name] += collect_results(sub, [("%s:job" % name, "v1 ran:marker")])
        jobs_seen = [s for s in seen[name] if s[0] == "%s:job" % name]
        source = "%s:job" % name
        assert jobs_seen == [(source, "v1 ran:%s" % body), (source, "v1 ran:marker")], seen[name]
        assert ok(second, "info", app=name)["scheduled"] == []
    assert ok(second, "info")["jobs"]["scheduled"] == 0
    deadline = time.monotonic() + 5
    while store_jobs(second.store) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store_jobs(second.store) == [], "jobs that ran are still stored"
    assert trace.read_text() == "due\n", "the job due while the node was down ran %d times" % (
        trace.read_text().count("due"))

    # Every app serves again, on the same endpoints.
    for name in ("sa", "sb"):
        reply = NativeClient(zctx, eps[name]["native"]).call("echo", name.encode())
        assert reply.ok and reply.body == b"v1:" + name.encode(), reply
    reply = NativeClient(zctx, eps["sc"]["native"]).call("hello", b"again")
    assert reply.ok and reply.body == PACKAGED_GREETING + b", again!", reply

    done = cli("list", node=second)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    for name in ("sa", "sb", "sc"):
        assert name in done.stdout, done.stdout
    for sub in subs.values():
        sub.close()


def test_corrupt_manifest_fails_that_app_only(cnode, zctx):
    eps = {name: endpoint() for name in ("good1", "good2")}
    first = cnode()
    for name, ep in eps.items():
        deploy(first, name, versioned_app(1, {"echo": {"type": "native-server", "endpoint": ep}}))
    assert first.stop() == 0
    bad = first.store / "apps" / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_bytes(b'{"type": "python", "args": ')

    n = cnode(store=first.store)
    for name, ep in eps.items():
        wait_state(n, name)
        reply = NativeClient(zctx, ep).call("echo", name.encode())
        assert reply.ok and reply.body == b"v1:" + name.encode(), reply
    entry = wait_state(n, "bad", "failed")
    assert entry["origin"] == "store", entry
    reason = entry.get("error")
    assert isinstance(reason, str) and "JSON" in reason, entry
    info = ok(n, "info", app="bad")
    assert info["state"] == "failed" and info["error"] == reason, info
    assert {a["app"]: a["state"] for a in ok(n, "info")["apps"]} == {
        "bad": "failed", "good1": "running", "good2": "running"}
    n.wait_for_log(r"\bbad\b.*JSON")

    # The failed app can be deleted (and is gone from the store), or fixed by a deploy.
    assert ok(n, "delete", app="bad") == {"app": "bad"}
    assert not bad.exists()
    wait_absent(n, "bad")
    error(n, "info", 404, app="bad")


def test_command_line_wins_over_the_store_for_one_run(cnode, zctx):
    ep = endpoint()
    tasks = {"echo": {"type": "native-server", "endpoint": ep}}
    first = cnode()
    deploy(first, "dup", versioned_app(1, tasks, manifest_version=1))
    assert first.stop() == 0
    stored = (stored_revision(first.store, "dup") / "manifest.json").read_bytes()

    # The command line gives "dup" too: it runs, with a warning, and is not written.
    second = cnode(store=first.store,
                   manifests={"dup": versioned_app(2, tasks, manifest_version=2)})
    second.wait_for_log(r"WARN .*\bdup\b")
    entry = wait_state(second, "dup")
    assert entry["origin"] == "command-line" and entry["version"] == 2, entry
    assert NativeClient(zctx, ep).call("echo", b"x").body == b"v2:x"
    assert (stored_revision(first.store, "dup") / "manifest.json").read_bytes() == stored
    assert second.stop() == 0

    # The next run without it restores the stored version.
    third = cnode(store=first.store)
    entry = wait_state(third, "dup")
    assert entry["origin"] == "store" and entry["version"] == 1, entry
    assert NativeClient(zctx, ep).call("echo", b"y").body == b"v1:y"
