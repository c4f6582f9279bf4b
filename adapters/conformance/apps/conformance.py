"""The conformance app for the Python SDK: the events the conformance kit calls."""

import time

import cocaine


def echo(request):
    return [request]


def count(request):
    for i in range(int(request)):
        yield str(i + 1)


@cocaine.streaming
def stream(request, response):
    for chunk in request:
        response.write(chunk)


def fail(request):
    raise ValueError("failed on %s" % request.decode())


def code(request):
    number, _, message = request.decode().partition(" ")
    raise cocaine.Error(int(number), message)


@cocaine.streaming
def slow(request, response):
    ms = int(request.read())
    response.write(b"started")
    deadline = time.monotonic() + ms / 1000.0
    while time.monotonic() < deadline:
        if response.cancelled:
            return
        time.sleep(0.005)
    response.write(b"done")
