"""An app for tests/test_fork_server.py: each reply says how its worker was made."""

import json
import os
import random
import time

VERSION = "one"


def info(request):
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[name] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass  # listdir's own descriptor, closed by now
    return [json.dumps({
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "fds": fds,
        "random": random.random(),
        "version": VERSION,
        "worker": os.environ.get("COCAINE_WORKER_ID"),
        "cwd": os.getcwd(),
    })]


def sleep(request):
    time.sleep(float(request))
    return [b"slept"]
