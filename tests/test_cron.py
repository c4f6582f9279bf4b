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
    # A worker kept warm: a first run delayed by a worker's start (0.4 to 0.5 s on a busy
    # machine) would end just before a whole second and make the first gap too short.
    n, pubsub = start(node, {"slow": {"type": "cron", "schedule": "* * * * * *",
                                      "overlap": "skip"}}, engine={"pool-min": 1})
    sub = Subscriber(zctx, pubsub, "cron:slow ")
    runs = []
    while len(runs) < 3:
        words, value = sub.recv(timeout=10)
        assert words[1] == "run", words
        runs.append(value)
    # Never two at once: a run starts only after the previous one ended, at the first whole
    # second after it (2.5 s run: the two fires in between are dropped).
    for a, b in zip(runs, runs[1:]):
        assert b["started"] >= a["ended"] - 0.05, runs
        gap = b["started"] - a["started"]
        assert 2.6 < gap < 3.6, runs
    n.wait_for_log(r"cron/slow: cron fire skipped, the previous run still runs \(2 skipped so far\)")
