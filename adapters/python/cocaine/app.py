"""Loading the app's code and finding the handler for an event.

An app is a `.py` file or a package directory (one holding `__init__.py`). Its folder goes on
`sys.path` so it can import its own sibling modules, and it is loaded from the exact path given
rather than by name, so a module of the same name elsewhere on the path cannot be picked up
instead.
"""

import os
import sys

# What importlib.util offers under these names, from the modules it takes them from: the
# import system's own, already loaded, where importlib.util would cost startup time.
from importlib._bootstrap import module_from_spec
from importlib._bootstrap_external import spec_from_file_location

__all__ = ["AppLoadError", "find_handler", "load_app"]

# Standard modules the worker relies on without importing them at start (to start faster):
# traceback and what it imports, only once a handler fails, and the modules wrapping the C
# ones the worker uses directly. An app module of one of these names would be as ambiguous
# as one named like a module already imported.
_RESERVED = frozenset(("traceback", "linecache", "tokenize", "token", "re", "socket",
                       "threading", "queue", "collections"))

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
