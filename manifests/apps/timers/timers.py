"""Timer tasks: each run publishes a JSON object, one pubsub message per field."""

import json
import time

_runs = {"every_second": 0, "after_each_run": 0}


def every_second(request):
    """recurring-timer: on a fixed grid, runs may overlap."""
    _runs["every_second"] += 1
    return [json.dumps({"runs": _runs["every_second"], "at": round(time.time(), 3)})]


def after_each_run(request):
    """drifting-timer: the next run is an interval after this one ends, so a slow run delays
    the next one rather than overlapping it."""
    _runs["after_each_run"] += 1
    time.sleep(0.5)
    return [json.dumps({"runs": _runs["after_each_run"], "at": round(time.time(), 3)})]


def later(request):
    """manual-scheduler: `cocaine schedule timers later --after 5s hello` runs this once."""
    return [json.dumps({"scheduled_body": request.decode("utf-8", "replace")})]
