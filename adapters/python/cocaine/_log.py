"""Diagnostics on stderr, which the node captures and shows with the worker's exit.

Lines carry a `cocaine worker <app>/<id>:` prefix so they stand out from the app's own output;
a lock keeps lines (and tracebacks) from different job threads from interleaving.
"""

import os
import sys
import _thread

_SDK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

_lock = _thread.allocate_lock()
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
    """Writes a diagnostic line followed by the traceback of `exc`.

    The SDK's own frames at the top of the traceback are left out, so it starts at the app's
    code, the part its author can act on.
    """
    try:
        import traceback  # only once something failed: it costs startup time otherwise
    except Exception:  # e.g. a module of the app's own folder shadowing one it needs
        traceback = None

    with _lock:
        try:
            sys.stderr.write("%s: %s\n" % (_prefix, message))
            if traceback is None:
                sys.stderr.write("%s: %s\n" % (type(exc).__name__, exc))
            else:
                traceback.print_exception(type(exc), exc, _app_frames(exc.__traceback__),
                                          file=sys.stderr)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _app_frames(tb):
    """`tb` without its leading SDK frames (all of it if no frame is the app's)."""
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename.startswith(_SDK_DIR):
        first = first.tb_next
    return first if first is not None else tb


def flush_and_exit(code):
    """Leaves at once, even if handler threads (or the app's own threads) are still busy.

    Normal interpreter shutdown would wait for any non-daemon thread the app started, and a
    worker whose node has let it go must not linger. Output is flushed first; atexit handlers
    do not run.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)
