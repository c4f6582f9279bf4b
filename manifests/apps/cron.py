"""Cron tasks (manifests/cron.json). Watch them with
`cocaine watch tcp://127.0.0.1:9400 cron:` while the node runs."""

import json
import time


def _now():
    # gmtime() without an argument reads a coarse clock that may still show the previous
    # second just after a fire; time.time() does not.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time())) + "Z"


def every_five_seconds(request):
    """At :00, :05, :10... of every minute (UTC)."""
    return [json.dumps({"at": _now()})]


def slow_every_two_seconds(request):
    """Takes 3 s, longer than its period: with overlap buffer-one, one fire waits for the
    running one and the others are skipped, so runs follow each other back to back."""
    started = _now()
    time.sleep(3)
    return [json.dumps({"started": started, "ended": _now()})]


def berlin_working_hours(request):
    """Every quarter of an hour, 08:00-17:45 Berlin time, Monday to Friday."""
    return [json.dumps({"at": _now()})]


def new_year(request):
    """Midnight of January 1st in New York."""
    return [json.dumps({"happy": "new year", "at": _now()})]
