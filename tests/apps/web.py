"""The http-server test app: one handler per behaviour tests/test_http_server.py checks."""

import json
import os
import time

import cocaine
import cocaine.http


def echo(request):
    """The body back, as one chunk (a Content-Length response)."""
    return [request]


def info(request):
    """What the handler sees of the request: method, path, query, headers, body size."""
    req = cocaine.http.request()
    return [json.dumps({"method": req.method, "path": req.path, "query": req.query,
                        "version": req.version, "headers": req.headers, "size": len(request)})]


def created(request):
    """A status and headers chosen by a plain handler."""
    return cocaine.http.Response(201, [("x-made-by", "web.py"), ("content-type", "text/plain")],
                                 b"made")


def chunks(request):
    """Three chunks: a chunked response."""
    return [b"one,", b"two,", b"three"]


@cocaine.streaming
def stream(request, response):
    """Echoes each body piece as it arrives, after a head of its own."""
    response.head(200, [("content-type", "text/plain"), ("x-streaming", "yes")])
    for chunk in request:
        response.write(b"got:" + chunk + b"\n")
    response.close()


def crash(request):
    """The worker dies (500)."""
    os._exit(3)


def fail(request):
    """The handler raises (502)."""
    raise ValueError("web.py fails on purpose")


def sleep(request):
    """Sleeps the query's seconds (a queue, a timeout, a client that leaves)."""
    seconds = float(cocaine.http.request().query or "1")
    time.sleep(seconds)
    return [b"slept"]


def web(request):
    """The task's own event when the task has no routes."""
    return [b"default:" + request]
