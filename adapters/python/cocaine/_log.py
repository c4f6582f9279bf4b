"""Diagnostics through the `logging` module, on stderr, which the node captures and shows
with the worker's exit.

The SDK logs to the `cocaine.worker` logger. `logging` is imported on the first line logged,
not at start (it costs the worker's start several milliseconds). Unless the app has
configured logging itself (handlers on the root or `cocaine` logger, before that first line),
the `cocaine` logger gets one handler writing `cocaine worker <app>/<id>: message` lines to
stderr, so they stand out from the app's own output. Tracebacks start at the app's code:
the SDK's own frames at their top are left out.
"""

import os
import sys

_SDK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

_prefix = "cocaine worker"
_logger = None
_handler = None  # the SDK's own stderr handler, when it installed one


def set_identity(app, worker_id):
    """Sets the prefix once the app name and worker id are known."""
    global _prefix
    _prefix = "cocaine worker %s/%s" % (app, worker_id)
    if _handler is not None:
        _handler.setFormatter(_formatter())


def _formatter():
    import logging

    return logging.Formatter(_prefix.replace("%", "%%") + ": %(message)s")


def _get_logger():
    global _logger, _handler
    if _logger is None:
        import logging

        logger = logging.getLogger("cocaine.worker")
        parent = logging.getLogger("cocaine")
        if not parent.handlers and not logging.getLogger().handlers:
            _handler = logging.StreamHandler(sys.stderr)
            _handler.setFormatter(_formatter())
            parent.addHandler(_handler)
            parent.propagate = False
            parent.setLevel(logging.INFO)
        _logger = logger
    return _logger


def log(message):
    """Logs one diagnostic line (a warning)."""
    try:
        _get_logger().warning("%s", message)
    except Exception:  # a module of the app's own folder shadowing one logging needs
        _fallback(message)


def log_exception(message, exc):
    """Logs `message` as an error, followed by the traceback of `exc` from the app's code."""
    try:
        _get_logger().error("%s", message,
                            exc_info=(type(exc), exc, _app_frames(exc.__traceback__)))
    except Exception:
        _fallback("%s\n%s: %s" % (message, type(exc).__name__, exc))


def _fallback(message):
    try:
        sys.stderr.write("%s: %s\n" % (_prefix, message))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: nothing better to do with a diagnostic


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
