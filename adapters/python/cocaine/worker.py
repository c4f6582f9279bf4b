"""`python3 -m cocaine.worker [--socket PATH] [--app NAME] CODE_PATH`: runs one worker.

The node starts this with the environment of docs/protocol.md §1. The app is imported before the
worker connects, so an app that cannot even be imported fails with its traceback on stderr and
exit code 1, and the node reports that instead of a silent handshake timeout.
"""

import argparse
import os
import socket
import sys

from . import _log
from .app import AppLoadError, load_app
from .loop import Worker
from .protocol import DEFAULT_MAX_MESSAGE

DEFAULT_HEARTBEAT_MS = 5000
DEFAULT_TIMEOUT_MS = 30000


def _env_ms(name, default):
    """A positive number of milliseconds from the environment, as seconds."""
    raw = os.environ.get(name, "")
    if not raw:
        return default / 1000.0
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        _log.log("%s=%r is not a positive number of milliseconds; using %d"
                 % (name, raw, default))
        value = default
    return value / 1000.0


def _env_bytes(name):
    """COCAINE_MAX_MESSAGE: the node's max-message in bytes, if it passes one."""
    raw = os.environ.get(name, "")
    if not raw:
        return DEFAULT_MAX_MESSAGE
    try:
        value = int(raw)
        if value > 0:
            return value
    except ValueError:
        pass
    _log.log("%s=%r is not a positive number of bytes; using %d"
             % (name, raw, DEFAULT_MAX_MESSAGE))
    return DEFAULT_MAX_MESSAGE


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python3 -m cocaine.worker",
        description="Run a Cocaine worker for a Python app (a .py file or a package directory).")
    parser.add_argument("--socket", help="the node's Unix socket (default: $COCAINE_SOCKET)")
    parser.add_argument("--app", help="the app's name, for diagnostics (default: $COCAINE_APP)")
    parser.add_argument("code_path", metavar="CODE_PATH")
    args = parser.parse_args(argv)
    args.socket = args.socket or os.environ.get("COCAINE_SOCKET")
    if not args.socket:
        parser.error("no socket: pass --socket or set COCAINE_SOCKET")
    args.worker_id = os.environ.get("COCAINE_WORKER_ID")
    if not args.worker_id:
        parser.error("COCAINE_WORKER_ID is not set")
    args.app = args.app or os.environ.get("COCAINE_APP") or os.path.basename(
        os.path.normpath(args.code_path))
    return args


def main(argv=None):
    """Runs the worker; returns the exit code."""
    args = _parse_args(argv)
    _log.set_identity(args.app, args.worker_id)
    heartbeat_s = _env_ms("COCAINE_HEARTBEAT_MS", DEFAULT_HEARTBEAT_MS)
    timeout_s = _env_ms("COCAINE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)
    max_message = _env_bytes("COCAINE_MAX_MESSAGE")

    try:
        module = load_app(args.code_path)
    except AppLoadError as e:
        _log.log("cannot load the app: %s" % e)
        return 1
    except BaseException as e:  # the app's own import failed: show where, as Python would
        _log.log_exception("importing %s failed" % args.code_path, e)
        return 1

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(args.socket)
    except OSError as e:
        _log.log("cannot connect to %s: %s" % (args.socket, e))
        return 1
    return Worker(sock, module, args.worker_id, heartbeat_s, timeout_s, max_message).run()


def _exit(code):
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


if __name__ == "__main__":
    try:
        _exit(main())
    except KeyboardInterrupt:
        _exit(130)
