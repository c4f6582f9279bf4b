"""Handlers for the cron tasks of tests/test_cron.py: each says when it ran."""

import json
import time


def tick(request):
    """Returns at once, with the worker's wall-clock time."""
    return [json.dumps({"at": time.time()})]


def slow(request):
    """Takes 2.5 s, longer than its schedule's period."""
    started = time.time()
    time.sleep(2.5)
    return [json.dumps({"run": {"started": started, "ended": time.time()}})]
