"""The raw-server test app: handlers named after the tasks of tests/test_raw_server.py."""

import time

import cocaine


def line(request):
    """The line back; `sleep S` sleeps S seconds first; `raise` fails."""
    if request.startswith(b"sleep "):
        time.sleep(float(request[6:]))
    if request == b"raise":
        raise ValueError("asked to fail")
    return [request]


def length(request):
    """The frame back, in two chunks (the node joins them)."""
    if request == b"raise":
        raise ValueError("asked to fail")
    half = len(request) // 2
    return [request[:half], request[half:]]


@cocaine.streaming
def stream(request, response):
    """Each chunk back as it arrives, then `end` once the connection's input ends."""
    for chunk in request:
        response.write(chunk)
    response.write(b"|end")
    response.close()
