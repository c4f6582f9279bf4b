"""The 2012 README's example app: a timer, a server and a spool watcher.

Each task's name is the event its jobs carry, so each task has a function of that name.
"""

import json
import os
import time

_started = time.time()


def aggregate(request):
    """Runs every minute on the recurring timer; its reply goes to the pubsub, one message
    per top-level field: subscribe to "example-2012:aggregate" to see them."""
    return [json.dumps({"uptime": round(time.time() - _started, 3), "pid": os.getpid()})]


def event(request):
    """The native-server: answers with what it was sent, reversed."""
    return [request[::-1]]


def spool(request):
    """The filesystem monitor of apps/example/spool (watched from its parent until it is
    made): the request lists the changes of one batch, `[{"path", "kind"}]`."""
    changes = json.loads(request or b"[]")
    return [json.dumps({"changes": len(changes), "paths": [c["path"] for c in changes]})]
