"""Diagnostics on stderr, which the node captures and shows with the worker's exit.

Lines carry a `cocaine worker <app>/<id>:` prefix so they stand out from the app's own output;
a lock keeps lines (and tracebacks) from different job threads from interleaving.
"""

import sys
import threading
import traceback

_lock = threading.Lock()
_prefix = "cocaine worker"


def set_identity(app, worker_id):
    """Sets the prefix once the app name and worker id are known."""
    global _prefix
    _prefix = "cocaine worker %s/%s" % (app, worker_id)


def log(message):
    """Writes one diagnostic line."""
    with _lock:
        try:
            sys.stderr.write("%s: %s\n" % (_prefix, message))
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # stderr closed: nothing better to do with a diagnostic


def log_exception(message, exc):
    """Writes a diagnostic line followed by the traceback of `exc`."""
    with _lock:
        try:
            sys.stderr.write("%s: %s\n" % (_prefix, message))
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
