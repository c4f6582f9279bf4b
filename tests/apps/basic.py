"""The main test app: one handler per behaviour the end-to-end tests need."""

import json
import os
import time

import cocaine

_ticks = [0]


def echo(request):
    """Plain handler: the request back as one chunk."""
    return [request]


def zecho(request):
    """For zeromq-server: three chunks, or an exception for b"boom"."""
    if request == b"boom":
        raise ValueError("boom")
    return [request, b"|", request.upper()]


@cocaine.streaming
def stream_echo(request, response):
    """Each request chunk is written back as soon as it arrives."""
    for chunk in request:
        response.write(b"echo:" + chunk)
    response.close()


def pid(request):
    return [str(os.getpid())]


def sleep(request):
    """Sleeps for the request's number of seconds."""
    time.sleep(float(request or b"1"))
    return [b"slept"]


@cocaine.streaming
def announce_sleep(request, response):
    """Writes the worker's pid at once, sleeps the request's seconds, then writes b"done"."""
    seconds = float(request.read() or b"1")
    response.write(str(os.getpid()))
    time.sleep(seconds)
    response.write(b"done")


def work(request):
    """A few milliseconds of work."""
    time.sleep(0.003)
    return [request]


def tick(request):
    """A timer task: a JSON object whose fields go to pubsub one by one."""
    _ticks[0] += 1
    return [json.dumps({"count": _ticks[0], "answer": {"value": 42, "task": "tick"}})]
