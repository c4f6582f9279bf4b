"""An echo app: the native-server's `echo`, the zeromq-server's `upper`, and a timer.

Any other function here can be called by name over the native-server too (the request's
event names it): `count` streams chunks back as a generator makes them.
"""

import json
import os
import time


def echo(request):
    return [request]


def upper(request):
    return [request.upper()]


def count(request):
    n = int(request or b"3")
    for i in range(1, n + 1):
        yield str(i)


def heartbeat(request):
    """Published every 5 s: subscribe with `cocaine watch tcp://127.0.0.1:9120 echo:heartbeat`."""
    return [json.dumps({"alive": True, "pid": os.getpid(), "time": time.time()})]
