"""Version 2 of an app redeployed by the control tests: every reply says "v2"."""

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
