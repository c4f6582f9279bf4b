"""cron tasks on a real node: fires on the wall clock's whole seconds, and a run longer
than the period is not doubled (overlap "skip")."""

import math

from conftest import Subscriber, endpoint, python_app


def start(node, tasks, engine=None):
    pubsub = endpoint()
    manifest = python_app("cron.py", tasks, engine=engine, pubsub=pubsub)
    return node({"cron": manifest}), pubsub


def test_fires_on_the_second(node, zctx):
    # A worker kept warm, so a fire's reply is not late because one is starting.
    n, pubsub = start(node, {"tick": {"type": "cron", "schedule": "* * * * * *"}},
                      engine={"pool-min": 1})
    sub = Subscriber(zctx, pubsub, "cron:tick ")
    stamps = []
    while len(stamps) < 8:
        words, value = sub.recv(timeout=5)
        assert words[1] == "at", words
        stamps.append((float(words[3]), value))
    # The first fires may wait for the worker to start; look at the steady ones.
    steady = stamps[3:]
    seconds = [math.floor(s) for s, _ in steady]
    assert len(set(seconds)) == len(seconds), "a second fired twice: %r" % stamps
    assert seconds[-1] - seconds[0] <= len(seconds) + 1, "fires were lost: %r" % stamps
    # Each reply is published within 300 ms after its whole second (tolerating one late one).
    late = [s for s, _ in steady if s - math.floor(s) >= 0.3]
    assert len(late) <= 1, "fires off the whole seconds: %r" % stamps
    # The worker itself ran them just after the second too.
    ran = [v for _, v in steady if v - math.floor(v) < 0.3]
    assert len(ran) >= len(steady) - 1, stamps


def test_a_skipped_fire_is_not_doubled(node, zctx):
    # A worker kept warm, so that most fires find it ready; a run delayed by its start is
    # judged by the same rule as the others.
    n, pubsub = start(node, {"slow": {"type": "cron", "schedule": "* * * * * *",
                                      "overlap": "skip"}}, engine={"pool-min": 1})
    sub = Subscriber(zctx, pubsub, "cron:slow ")
    runs = []
    while len(runs) < 3:
        words, value = sub.recv(timeout=30)
        assert words[1] == "run", words
        # The node's publication stamp: when it saw the run end.
        runs.append(dict(value, seen=float(words[3])))
    # Every bound is taken from the node's and the worker's own clock readings, not from how
    # long a step should take: a loaded machine delays the worker's start, a dispatch or a
    # reply, never the rule. Each run ends half-way through a second (tests/apps/cron.py).
    for a, b in zip(runs, runs[1:]):
        # Never two at once: a run starts only after the previous one ended.
        assert b["started"] >= a["ended"] - 0.05, runs
        # Skipped fires are dropped, not made up when the run ends: the next run is fired on a
        # whole second after the end (a made-up one would start just after the half-second).
        assert b["started"] >= math.ceil(a["ended"]) - 0.05, runs
        # And on the first whole second after the node saw the end: a later one would mean a
        # fire with nothing running was dropped too.
        assert b["started"] < math.ceil(a["seen"]) + 1, runs
    n.wait_for_log(r"cron/slow: cron fire skipped, the previous run still runs \(2 skipped so far\)")
