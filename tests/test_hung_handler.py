"""Issue 13 item 6: a hung handler meets the engine's default job timeout (`job-timeout`),
the timeout and the kill are logged, and `info` shows worker counts that add up."""

import re
import time

from conftest import NativeClient, endpoint, python_app, wait_gone
from control import cnode, ok  # noqa: F401 (cnode is a fixture)


def hung_node(cnode, engine):
    ep = endpoint()
    manifest = python_app("basic.py", {"echo": {"type": "native-server", "endpoint": ep}},
                          engine=engine)
    return cnode(manifests={"hung": manifest}), ep


def workers_of(n):
    return ok(n, "info", app="hung")["engine"]["workers"]


def assert_add_up(w):
    assert w["ready"] == w["idle"] + w["busy"], w
    assert w["total"] == w["starting"] + w["ready"] + w["draining"], w


def test_a_hung_handler_times_out_by_default_and_the_kill_is_logged(cnode, zctx):
    n, ep = hung_node(cnode, {"pool-limit": 1, "job-timeout": 1, "termination-timeout": 0.5})
    client = NativeClient(zctx, ep)
    pid = int(client.call("pid").body)
    # No `timeout` in the request: the engine's job-timeout applies.
    reply = client.call("sleep", b"60", timeout=10)
    assert reply.code == 504, reply
    assert reply.message == "timed out after 1000 ms", reply
    assert "/" not in reply.message
    n.wait_for_log(r"hung/w\S+: job \d+ \(echo\) timed out after 1000 ms; cancelling it")
    n.wait_for_log(r"hung/w\S+: did not let go of cancelled job \d+ within 500 ms; killing it")
    assert wait_gone(pid, 5), "the hung worker %d was not killed" % pid
    again = client.call("pid")
    assert again.ok and int(again.body) != pid, again
    assert_add_up(workers_of(n))


def test_worker_counts_add_up_while_a_job_runs(cnode, zctx):
    n, ep = hung_node(cnode, {"pool-limit": 2, "pool-min": 2, "job-timeout": 0})
    client = NativeClient(zctx, ep)
    # pool-min 2: wait (polling `info`, the node gives no event for it) for both workers.
    deadline = time.monotonic() + 20
    while workers_of(n)["ready"] < 2:
        assert time.monotonic() < deadline, workers_of(n)
        time.sleep(0.05)
    sid = client.send_call("announce_sleep", b"30")
    client.wait_chunks(sid, 1)  # running on a worker now
    w = workers_of(n)
    assert (w["ready"], w["idle"], w["busy"]) == (2, 1, 1), w
    assert_add_up(w)
    # job-timeout 0: no default timeout, so nothing was logged about this job.
    assert not re.search(r"timed out after", n.log), n.tail()
