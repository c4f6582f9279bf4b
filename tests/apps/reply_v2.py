"""Version 2 of an app redeployed by the control tests: every reply says "v2"."""

import json
import os

VERSION = b"v2"


def echo(request):
    """The request back, after the version."""
    return [VERSION + b":" + request]


def job(request):
    """A manual-scheduler task: the result goes to pubsub as "<version> ran:<body>"."""
    return [VERSION + b" ran:" + request]


def pid(request):
    return [str(os.getpid())]


def append(request):
    """A manual-scheduler task that leaves a trace outside the node: the request is JSON
    {"path", "line"}; the line is appended to the file, so a test can count the runs."""
    order = json.loads(request)
    with open(order["path"], "a") as f:
        f.write(order["line"] + "\n")
    return [VERSION + b" appended"]
