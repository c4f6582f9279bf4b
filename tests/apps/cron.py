"""Handlers for the cron tasks of tests/test_cron.py: each says when it ran."""

import json
import math
import time


def tick(request):
    """Returns at once, with the worker's wall-clock time."""
    return [json.dumps({"at": time.time()})]


def slow(request):
    """Runs 2.5 to 3.5 s, longer than its schedule's period, and ends half-way through a
    second (3.5 s after the whole second it started in): the node sees the end between whole
    seconds, so the next fire's second is the one after the end, however late this run began."""
    started = time.time()
    end = math.floor(started) + 3.5
    while time.time() < end:
        time.sleep(end - time.time())
    return [json.dumps({"run": {"started": started, "ended": time.time()}})]
