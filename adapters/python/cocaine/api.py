"""What app code imports from `cocaine`: the handler markers, `App`, and the exceptions.

Kept apart from the worker's machinery so that `import cocaine` in an app loads nothing but
this (the worker itself runs as `python3 -m cocaine.worker`, and importing that module a
second time under its package name would create a second copy of it). Annotations are
string literals and `typing` is imported for type checkers only, so the hints cost the
worker's start nothing (not even `from __future__ import annotations`, a module to load).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["App", "Cancelled", "Error", "is_streaming", "streaming"]

_MARK = "_cocaine_streaming"


def streaming(handler: "F") -> "F":
    """Marks `handler` as streaming: it is called as `handler(request, response)` when the job
    starts, instead of with the whole request once it has arrived.

    `request` iterates over the request's chunks as they arrive (with `async for` when the
    handler is an `async def`); `response` has `write(chunk)`, `close()` and
    `error(code, message)`. The function itself is returned, so it can still be called
    directly in tests.
    """
    setattr(handler, _MARK, True)
    return handler


def is_streaming(handler: "Callable[..., Any]") -> bool:
    """Whether `handler` was marked with `@streaming`."""
    return getattr(handler, _MARK, False) is True


class App:
    """Explicit registration of handlers, beside the module-level functions of the 2012
    convention::

        app = cocaine.App()

        @app.handler("echo")
        def echo(request):
            return [request]

        @app.handler("shout", streaming=True)
        async def shout(request, response):
            async for chunk in request:
                response.write(chunk.upper())

    The worker finds every `App` among the app module's globals. A function registered here is
    an event under the names it was registered with only (not also under its own name as a
    module-level function). Registering one event twice raises ValueError at once; an event
    registered on an `App` and also defined as another module-level function, or on two
    `App`s, fails the app's load with a message naming both.
    """

    def __init__(self) -> None:
        self.handlers: "Dict[str, Callable[..., Any]]" = {}

    def handler(self, event: "Optional[str]" = None, *,
                streaming: bool = False) -> "Callable[[F], F]":
        """Registers the decorated function as the handler of `event` (default: the function's
        own name); `streaming=True` marks it streaming, as `@cocaine.streaming` does."""
        if event is not None and (type(event) is not str or not event):
            raise ValueError("an event name must be a non-empty str, got %r" % (event,))

        def register(function: "F") -> "F":
            self.add(event if event is not None else function.__name__, function,
                     streaming=streaming)
            return function

        return register

    def streaming(self, event: "Optional[str]" = None) -> "Callable[[F], F]":
        """`@app.streaming("name")`: the same as `@app.handler("name", streaming=True)`."""
        return self.handler(event, streaming=True)

    def add(self, event: str, function: "Callable[..., Any]", *,
            streaming: bool = False) -> None:
        """Registers `function` for `event` without a decorator."""
        if not callable(function):
            raise TypeError("the handler of %r must be callable, not %s"
                            % (event, type(function).__name__))
        if event.startswith("_"):
            raise ValueError("event %r: names starting with '_' are never events" % event)
        previous = self.handlers.get(event)
        if previous is not None:
            raise ValueError("event %r is already registered (by %s); a second handler %s "
                             "would hide it" % (event, _name(previous), _name(function)))
        if streaming:
            _mark_streaming(function)
        self.handlers[event] = function


def _mark_streaming(function: "Callable[..., Any]") -> None:
    try:
        setattr(function, _MARK, True)
    except AttributeError:  # a bound method or a builtin: no attributes of its own
        raise TypeError("cannot mark %s streaming; register a plain function"
                        % _name(function)) from None


def _name(function: "Any") -> str:
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None) or repr(function)
    return "%s.%s" % (module, name) if module else name


class Cancelled(Exception):
    """The node cancelled the job (client went away, timeout, deadline).

    Raised by `response.write()` and by iterating the request once the job is cancelled, so a
    streaming handler stops at its next step. The node has already been told `499 cancelled`;
    letting this exception escape the handler is the normal way out and is not logged.
    (An `async def` handler is cancelled as an asyncio task: `asyncio.CancelledError` at its
    current `await`.)
    """


class Error(Exception):
    """Raise this from a handler to fail the job with a chosen code instead of 502.

    `raise cocaine.Error(404, "no such user")` becomes `[6, sid, 404, "no such user"]`. Codes
    are the node's (docs/protocol.md, docs/engine.md): 400, 404, 413, 500, 503...
    """

    code: int
    message: str

    def __init__(self, code: int, message: object) -> None:
        if type(code) is not int or not 0 <= code <= 0xFFFFFFFF:
            raise ValueError("error code must be an integer in 0..2**32-1, got %r" % (code,))
        super().__init__(code, message)
        self.code = code
        self.message = str(message)

    def __str__(self) -> str:
        return "%d %s" % (self.code, self.message)
