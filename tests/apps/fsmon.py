"""The filesystem-monitor test app: each batch of changes comes back as the `changes` field of
the task's publication, with the pid that handled it; `echo` answers native calls."""

import json
import os


def _batch(request):
    return [json.dumps({"changes": json.loads(request), "pid": os.getpid()})]


def inbox(request):
    return _batch(request)


def later(request):
    return _batch(request)


def echo(request):
    return [request]
