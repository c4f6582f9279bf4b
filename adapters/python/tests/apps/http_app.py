"""Handlers for test_http.py: reply heads and request meta over the worker channel."""

import cocaine
import cocaine.http


def made(request):
    return cocaine.http.Response(201, [("Content-Type", "text/plain"), ("X-Two", "a b")],
                                 b"made " + request)


def many(request):
    return cocaine.http.Response(202, [], (c for c in (b"a", "b", b"")))


def empty(request):
    return cocaine.http.Response(204)


def whoami(request):
    req = cocaine.http.request()
    if req is None:
        return ["not http"]
    return ["%s %s %s %s x=%s %r" % (req.method, req.path, req.version, req.header("X-A"),
                                    req.params.get("x"), req.header_list("x-b"))]


def bad_status(request):
    return cocaine.http.Response(99)


def bad_header(request):
    return cocaine.http.Response(200, [("x", "one\r\nInjected: yes")])


@cocaine.streaming
def stream(request, response):
    info = cocaine.http.Request.from_meta(request.meta)
    response.head(200 if info is None else 206, [("x-path", info.path if info else "-")])
    for chunk in request:
        response.write(chunk)


@cocaine.streaming
def late_head(request, response):
    response.write(b"first")
    response.head(500, [])
