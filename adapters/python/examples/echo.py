"""Example app: each public function is an event of the same name.

Run by the node as `python3 -m cocaine.worker examples/echo.py`; see ../README.md.
"""

import cocaine


def echo(request):
    """Plain handler (the 2012 convention): the whole request in, a list of chunks out."""
    return [request]


def upper(request):
    """str chunks are fine too: they are sent as UTF-8."""
    return [request.decode("utf-8", "replace").upper()]


def count(request):
    """A generator: each yielded chunk is sent as soon as it is produced.

    The request is a number n (default 3); the reply is the chunks "1", "2", ... "n".
    """
    n = int(request or b"3")
    for i in range(1, n + 1):
        yield str(i)


def nothing(request):
    """Returning None sends no chunks: the reply is empty."""
    return None


def fail(request):
    """An exception becomes error 502 "ValueError: <text>"; the worker stays up."""
    raise ValueError("bad request: %r" % request)


def forbidden(request):
    """cocaine.Error picks the code: this fails with 403 "go away"."""
    raise cocaine.Error(403, "go away")


@cocaine.streaming
def stream(request, response):
    """Streaming handler: echoes each request chunk as soon as it arrives."""
    for chunk in request:
        response.write(chunk)
    # Returning closes the reply; response.close() would do the same explicitly.


@cocaine.streaming
def words(request, response):
    """Streaming with an explicit error: counts bytes, refusing an empty request."""
    total = sum(len(chunk) for chunk in request)
    if total == 0:
        response.error(400, "empty request")
        return
    response.write("%d bytes" % total)
    response.close()


def _helper(request):
    """Names starting with _ are never events: invoking "_helper" gets 404."""
    return [b"never"]
