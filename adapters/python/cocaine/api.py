"""What app code imports from `cocaine`: the streaming marker and the exceptions it may meet.

Kept apart from the worker's machinery so that `import cocaine` in an app loads nothing but
this (the worker itself runs as `python3 -m cocaine.worker`, and importing that module a
second time under its package name would create a second copy of it).
"""

__all__ = ["Cancelled", "Error", "is_streaming", "streaming"]

_MARK = "_cocaine_streaming"


def streaming(handler):
    """Marks `handler` as streaming: it is called as `handler(request, response)` when the job
    starts, instead of with the whole request once it has arrived.

    `request` iterates over the request's chunks as they arrive; `response` has `write(chunk)`,
    `close()` and `error(code, message)`. The function itself is returned, so it can still be
    called directly in tests.
    """
    setattr(handler, _MARK, True)
    return handler


def is_streaming(handler):
    """Whether `handler` was marked with `@streaming`."""
    return getattr(handler, _MARK, False) is True


class Cancelled(Exception):
    """The node cancelled the job (client went away, timeout, deadline).

    Raised by `response.write()` and by iterating the request once the job is cancelled, so a
    streaming handler stops at its next step. The node has already been told `499 cancelled`;
    letting this exception escape the handler is the normal way out and is not logged.
    """


class Error(Exception):
    """Raise this from a handler to fail the job with a chosen code instead of 502.

    `raise cocaine.Error(404, "no such user")` becomes `[6, sid, 404, "no such user"]`. Codes
    are the node's (docs/protocol.md, docs/engine.md): 400, 404, 413, 500, 503...
    """

    def __init__(self, code, message):
        if type(code) is not int or not 0 <= code <= 0xFFFFFFFF:
            raise ValueError("error code must be an integer in 0..2**32-1, got %r" % (code,))
        super().__init__(code, message)
        self.code = code
        self.message = str(message)

    def __str__(self):
        return "%d %s" % (self.code, self.message)
