"""The cluster client's choice and retries (cocaine.cluster), with a fake transport: the same
cases as the core's balance tests (a full or broken node is never chosen, a starting one counts
as busy, own calls in flight come first), 503 and a silent node retried elsewhere, each node
tried once, membership asked for again when due and after a node fails, and in-flight counts
shared between threads. The real thing runs in tests/test_python_cluster.py."""

import itertools
import threading
import unittest

from cocaine.cluster import (SCALE, ClusterClient, NoNodeError, UnresolvedError, client_score,
                             parse_nodes, power_of_two, reachable, score)


class CallError(Exception):
    """As `cocaine.client.CallError` (which needs pyzmq to import): an answer's code."""

    def __init__(self, code, message):
        super().__init__("%d %s" % (code, message))
        self.code = code


def entry(node_id, queue=0, busy=0, pool_limit=4, queue_limit=10, state="running",
          endpoint=None, local=False):
    return {"node_id": node_id, "control": "tcp://%s:5000" % node_id, "local": local,
            "silent_ms": 0, "version": 1, "state": state,
            "tasks": {"t": endpoint or "tcp://%s:9100" % node_id}, "queue": queue,
            "busy": busy, "workers": busy, "pool_limit": pool_limit, "queue_limit": queue_limit}


class FakeNode:
    """One node's answers: a list of outcomes, the last repeated ("ok", a CallError code, or
    "timeout"); calls are counted."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes) or ["ok"]
        self.calls = 0
        self.closed = 0


class FakeClient:
    def __init__(self, endpoint, node):
        self.endpoint = endpoint
        self.node = node

    def call(self, event, body, timeout=None):
        node = self.node
        outcome = node.outcomes[min(node.calls, len(node.outcomes) - 1)]
        node.calls += 1
        if callable(outcome):
            outcome = outcome()
        if outcome == "ok":
            return b"%s:%s" % (self.endpoint.encode(), body)
        if outcome == "timeout":
            raise TimeoutError("no reply")
        raise CallError(outcome, "fake")

    def close(self):
        self.node.closed += 1


class Fake:
    """A cluster of fake nodes and a resolver over a list of entries that tests can change."""

    def __init__(self, entries, nodes=None):
        self.entries = entries
        self.nodes = nodes or {}
        self.resolves = 0
        self.fail_resolve = False

    def resolver(self, control, app, timeout):
        self.resolves += 1
        if self.fail_resolve:
            raise TimeoutError("no answer")
        return {"app": app, "nodes": self.entries}

    def connect(self, endpoint):
        return FakeClient(endpoint, self.nodes.setdefault(endpoint, FakeNode()))

    def client(self, draws=None, **options):
        draws = itertools.cycle(draws) if draws is not None else None
        return ClusterClient(["tcp://a:5000"], "app", "t", connect=self.connect,
                             resolver=self.resolver,
                             draw=(lambda: next(draws)) if draws else None, **options)


class ScoreTest(unittest.TestCase):
    def test_announced_score_matches_the_core(self):
        self.assertEqual(score(entry("a", queue=2, busy=2, pool_limit=4)), (SCALE, 2))
        self.assertEqual(score(entry("a")), (0, 0))
        # A full queue, or an app not running nor starting: never chosen.
        self.assertIsNone(score(entry("a", queue=10, queue_limit=10)))
        for state in ("broken", "stopping", "deleted", "what"):
            self.assertIsNone(score(entry("a", state=state)))
        # Starting counts as if every worker were busy.
        self.assertEqual(score(entry("a", state="starting", pool_limit=4)), (SCALE, 0))
        # A pool limit of zero does not divide by zero.
        self.assertEqual(score(entry("a", busy=0, pool_limit=0)), (0, 0))

    def test_own_calls_come_before_the_announcement(self):
        idle_but_mine = client_score(entry("a"), 2)
        busy_not_mine = client_score(entry("b", busy=4, queue=5), 0)
        self.assertLess(busy_not_mine, idle_but_mine)
        self.assertIsNone(client_score(entry("c", state="broken"), 0))

    def test_power_of_two_draws_like_the_core(self):
        loads = [3, 1, 2, None]
        load = lambda x: x  # noqa: E731
        # draw 0 with n = 4: a = 0, step = 1, b = 1 -> the lower of 3 and 1.
        self.assertEqual(power_of_two(loads, load, 0), 1)
        # draw 2: a = 2, step = 1, b = 3 (unavailable) -> a.
        self.assertEqual(power_of_two(loads, load, 2), 2)
        # Both drawn unavailable: the least loaded available one.
        self.assertEqual(power_of_two([None, None, 5, 4], load, 0), 3)
        self.assertIsNone(power_of_two([None, None], load, 7))
        self.assertIsNone(power_of_two([], load, 7))
        self.assertEqual(power_of_two([9], load, 7), 0)
        self.assertIsNone(power_of_two([None], load, 7))
        # A tie goes to the first drawn.
        self.assertEqual(power_of_two([1, 1], load, 1), 1)

    def test_endpoints_are_made_reachable(self):
        self.assertEqual(reachable("tcp://*:9100", "tcp://10.0.0.2:5000"), "tcp://10.0.0.2:9100")
        self.assertEqual(reachable("tcp://0.0.0.0:9100", "tcp://*:5000"), "tcp://127.0.0.1:9100")
        self.assertEqual(reachable("tcp://10.0.0.3:9100", "tcp://x:1"), "tcp://10.0.0.3:9100")
        self.assertEqual(reachable("ipc:///tmp/x", "tcp://x:1"), "ipc:///tmp/x")

    def test_resolve_answers_are_read_defensively(self):
        answer = {"nodes": [
            entry("a", endpoint="tcp://*:9100", local=True),
            entry("b", endpoint="tcp://*:9100"),
            {"node_id": "c", "tasks": {"other": "tcp://c:1"}},          # not this task
            "garbage",
            dict(entry("d"), queue=-1, busy="x"),                          # bad numbers: 0
        ]}
        nodes = parse_nodes(answer, "t", "tcp://asked:5000")
        self.assertEqual([n["node_id"] for n in nodes], ["a", "b", "d"])
        self.assertEqual(nodes[0]["endpoint"], "tcp://asked:9100")   # local: via the asked one
        self.assertEqual(nodes[1]["endpoint"], "tcp://b:9100")       # via its own control
        self.assertEqual((nodes[2]["queue"], nodes[2]["busy"]), (0, 0))
        self.assertEqual(parse_nodes({}, "t", "x"), [])


class ClientTest(unittest.TestCase):
    def test_calls_go_to_the_less_loaded_and_avoid_full_and_broken_nodes(self):
        fake = Fake([entry("a", busy=4, queue=3), entry("b"), entry("c", queue=10),
                     entry("d", state="broken")])
        # Draws 0 to 11 name each ordered pair of the four nodes once (first = draw % 4, then
        # step 1 + draw // 4): every pair is tried, twice over, and the counts are exact.
        # (Random draws made them a matter of luck: b ahead of a failed about one run in ten.)
        client = fake.client(draws=range(12))
        for _ in range(24):
            reply = client.call("e", b"x")
            self.assertIn(reply.node_id, ("a", "b"))
            self.assertEqual(reply.retries, 0)
        self.assertNotIn("tcp://c:9100", fake.nodes)
        self.assertNotIn("tcp://d:9100", fake.nodes)
        # b is idle, a busy: whenever both are drawn, b wins, and c with d falls back to b (the
        # least loaded that can take it); a is chosen only against c or d: 4 pairs of 12.
        self.assertEqual(fake.nodes["tcp://a:9100"].calls, 8)
        self.assertEqual(fake.nodes["tcp://b:9100"].calls, 16)

    def test_a_503_is_retried_on_another_node_and_each_node_tried_once(self):
        fake = Fake([entry("a"), entry("b")],
                    {"tcp://a:9100": FakeNode(503), "tcp://b:9100": FakeNode("ok")})
        client = fake.client(draws=[0, 0])
        reply = client.call("e", b"x")
        self.assertEqual((reply.node_id, reply.retries), ("b", 1))
        # Everyone busy: NoNodeError, caused by the last 503; each node asked once.
        fake.nodes["tcp://b:9100"].outcomes = [503]
        calls = {e: n.calls for e, n in fake.nodes.items()}
        with self.assertRaises(NoNodeError) as caught:
            client.call("e", b"x")
        self.assertIsInstance(caught.exception.__cause__, CallError)
        self.assertEqual({e: n.calls - calls[e] for e, n in fake.nodes.items()},
                         {"tcp://a:9100": 1, "tcp://b:9100": 1})

    def test_other_errors_are_the_answer(self):
        fake = Fake([entry("a"), entry("b")],
                    {"tcp://a:9100": FakeNode(500), "tcp://b:9100": FakeNode(500)})
        with self.assertRaises(CallError) as caught:
            fake.client().call("e", b"x")
        self.assertEqual(caught.exception.code, 500)
        self.assertEqual(sum(n.calls for n in fake.nodes.values()), 1)

    def test_a_silent_node_is_left_resolved_again_and_its_connection_dropped(self):
        fake = Fake([entry("a"), entry("b")],
                    {"tcp://a:9100": FakeNode("timeout"), "tcp://b:9100": FakeNode("ok")})
        client = fake.client(draws=[0, 0])
        resolves = fake.resolves
        reply = client.call("e", b"x")
        self.assertEqual((reply.node_id, reply.retries), ("b", 1))
        self.assertEqual(fake.resolves, resolves + 1)
        self.assertEqual(fake.nodes["tcp://a:9100"].closed, 1)

    def test_membership_is_asked_for_again_when_due(self):
        now = [0.0]
        fake = Fake([entry("a")])
        client = fake.client(refresh=1.0, clock=lambda: now[0])
        self.assertEqual(client.call("e", b"1").node_id, "a")
        fake.entries = [entry("b")]                 # a left, b joined
        now[0] = 0.5
        self.assertEqual(client.call("e", b"2").node_id, "a")   # not due yet
        now[0] = 1.0
        self.assertEqual(client.call("e", b"3").node_id, "b")
        # Control endpoints named by resolve are remembered, for when the first one goes.
        self.assertIn("tcp://b:5000", client.controls)
        # A resolve that fails keeps the nodes known.
        fake.fail_resolve = True
        now[0] = 5.0
        self.assertEqual(client.call("e", b"4").node_id, "b")

    def test_no_node_answers_resolve(self):
        fake = Fake([])
        fake.fail_resolve = True
        with self.assertRaises(UnresolvedError):
            fake.client()
        with self.assertRaises(ValueError):
            ClusterClient([], "app", "t", resolver=fake.resolver)
        with self.assertRaises(ValueError):
            ClusterClient(["tcp://a:1"], "app", "t", resolver=fake.resolver, user="alice")

    def test_own_calls_in_flight_steer_concurrent_threads(self):
        # Two idle nodes; a call holds one of them: the next call, from another thread, goes to
        # the other one whatever the draw.
        release = threading.Event()
        held = threading.Event()
        # Every wait is for an event; the bound only ends a failing run (a loaded machine may
        # take seconds to schedule a thread).
        bound = 60

        def hold():
            held.set()
            release.wait(bound)
            return "ok"

        fake = Fake([entry("a"), entry("b")],
                    {"tcp://a:9100": FakeNode(hold, "ok"), "tcp://b:9100": FakeNode("ok")})
        client = fake.client(draws=[0, 0, 0, 0])   # draw 0 picks a, unless a is busier
        first = threading.Thread(target=client.call, args=("e", b"1"))
        first.start()
        self.assertTrue(held.wait(bound))
        try:
            self.assertEqual(client.nodes[0]["in_flight"], 1)
            self.assertEqual(client.call("e", b"2").node_id, "b")
        finally:
            release.set()
        first.join(bound)
        self.assertFalse(first.is_alive())
        self.assertEqual([n["in_flight"] for n in client.nodes], [0, 0])
        client.close()


if __name__ == "__main__":
    unittest.main()
