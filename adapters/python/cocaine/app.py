"""Loading the app's code and finding the handler for an event.

An app is a `.py` file or a package directory (one holding `__init__.py`). Its folder goes on
`sys.path` so it can import its own sibling modules, and it is loaded from the exact path given
rather than by name, so a module of the same name elsewhere on the path cannot be picked up
instead.
"""

import os
import sys

# What importlib.util offers under these names, from the modules it takes them from: the
# import system's own, loaded with the interpreter (as `_frozen_importlib*`), where
# importlib.util would cost startup time, and even `importlib._bootstrap` imports the
# `importlib` package and `warnings` first.
try:
    from _frozen_importlib import module_from_spec
    from _frozen_importlib_external import spec_from_file_location
except ImportError:  # an interpreter without them under those names
    from importlib.util import module_from_spec, spec_from_file_location

from .api import App, is_streaming

__all__ = ["AppLoadError", "Handlers", "find_handler", "load_app", "STREAMING", "ASYNC"]

# A handler's kind, as bits: how the worker runs it.
STREAMING = 1  # called at the job's start with (request, response)
ASYNC = 2      # an `async def` (or async generator): a task on the worker's asyncio loop

# Code flags of `async def` functions and async generators (inspect's names; inspect itself is
# slow to import).
_CO_ASYNC = 0x80 | 0x200

# Standard modules the worker relies on without importing them at start (to start faster):
# traceback and what it imports, only once a handler fails, and the modules wrapping the C
# ones the worker uses directly. An app module of one of these names would be as ambiguous
# as one named like a module already imported.
# `logging` (and what it imports) once the worker logs something, `asyncio` (and what it
# imports) when the app has an `async def` handler.
_RESERVED = frozenset(("traceback", "linecache", "tokenize", "token", "re", "socket",
                       "threading", "queue", "collections", "logging", "string", "weakref",
                       "asyncio", "selectors", "concurrent", "contextvars", "heapq", "ssl",
                       "signal", "inspect", "functools", "enum", "types"))

_ModuleType = type(sys)


class AppLoadError(Exception):
    """CODE_PATH does not name something loadable (before any app code runs)."""


def load_app(code_path):
    """Imports the app at `code_path` and returns its module.

    Raises AppLoadError for a bad path; any exception raised by the app's own code at import
    time (SyntaxError, ImportError...) propagates unchanged, so its traceback can be shown.
    """
    path = os.path.abspath(code_path)
    if os.path.isdir(path):
        init = os.path.join(path, "__init__.py")
        if not os.path.isfile(init):
            raise AppLoadError("%s is a directory without __init__.py" % code_path)
        name = os.path.basename(path.rstrip(os.sep))
        folder = os.path.dirname(path.rstrip(os.sep))
        spec = spec_from_file_location(
            name, init, submodule_search_locations=[path])
    elif os.path.isfile(path):
        name = os.path.splitext(os.path.basename(path))[0]
        folder = os.path.dirname(path)
        spec = spec_from_file_location(name, path)
    else:
        raise AppLoadError("%s does not exist" % code_path)
    if spec is None:
        raise AppLoadError("%s is not a Python file or package" % code_path)
    if name in sys.modules or name in _RESERVED:
        # The worker has already imported a module of that name (socket, threading...), and
        # the app's own imports of it would now be ambiguous.
        raise AppLoadError("the app's module name %r clashes with an already imported module; "
                           "rename %s" % (name, code_path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def find_handler(module, event):
    """Returns the callable handling `event`, or None.

    A handler is a public (no leading `_`) module-level callable that is not a class or a
    module. If the module defines `__all__`, only the names it lists are events; otherwise only
    functions defined by the app itself (its module or, for a package, its submodules) are, so
    that a client cannot call something the app merely imported (`from os import remove`).
    """
    if not event or event.startswith("_"):
        return None
    exported = getattr(module, "__all__", None)
    if exported is not None and event not in exported:
        return None
    handler = getattr(module, event, None)
    if handler is None or not callable(handler):
        return None
    if isinstance(handler, (type, _ModuleType)):
        return None
    if exported is None and not _defined_in(handler, module.__name__):
        return None
    return handler


def _defined_in(handler, module_name):
    owner = getattr(handler, "__module__", None)
    return isinstance(owner, str) and (owner == module_name
                                       or owner.startswith(module_name + "."))


def kind_of(handler):
    """STREAMING and ASYNC bits of `handler` (0: a plain synchronous function)."""
    kind = STREAMING if is_streaming(handler) else 0
    code = getattr(handler, "__code__", None)
    if code is None:  # a callable object: its __call__ decides
        code = getattr(getattr(type(handler), "__call__", None), "__code__", None)
    if code is not None and code.co_flags & _CO_ASYNC:
        kind |= ASYNC
    return kind


class Handlers:
    """The app's events: those registered on the `App` objects among the module's globals,
    then the module-level functions of the 2012 convention (`find_handler`), minus functions
    registered on an `App` (they answer to their registered names only).

    `lookup(event)` gives `(handler, kind)` or None; found handlers are remembered while the
    module keeps the same object under that name.
    """

    def __init__(self, module):
        self._module = module
        self._apps = [value for value in list(vars(module).values()) if isinstance(value, App)]
        self._registered = {}
        for app in self._apps:
            for event, handler in app.handlers.items():
                self._claim(event, handler)
        self._cache = {}

    def _claim(self, event, handler):
        other = self._registered.get(event)
        if other is not None and other is not handler:
            raise AppLoadError("event %r is registered on two cocaine.App objects" % event)
        self._registered[event] = handler
        function = find_handler(self._module, event)
        if function is not None and function is not handler and not self._is_registered(
                function):
            raise AppLoadError(
                "event %r is both registered on a cocaine.App and the module-level function "
                "%s.%s; rename one of them" % (event, self._module.__name__, event))

    def _is_registered(self, function):
        return any(function is h for app in self._apps for h in app.handlers.values())

    def has_async(self):
        """Whether any event's handler is an `async def` (the worker then loads asyncio)."""
        for app in self._apps:
            if any(kind_of(h) & ASYNC for h in app.handlers.values()):
                return True
        for name, value in list(vars(self._module).items()):
            if find_handler(self._module, name) is value and kind_of(value) & ASYNC:
                return True
        return False

    def lookup(self, event):
        """`(handler, kind, registered)` for `event`, or None."""
        cached = self._cache.get(event)
        if cached is not None and (cached[2] or getattr(self._module, event, None) is cached[0]):
            return cached
        for app in self._apps:
            handler = app.handlers.get(event)
            if handler is not None:
                found = self._cache[event] = (handler, kind_of(handler), True)
                return found
        handler = find_handler(self._module, event)
        if handler is None or (self._apps and self._is_registered(handler)):
            return None
        found = self._cache[event] = (handler, kind_of(handler), False)
        return found
