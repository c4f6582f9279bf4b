"""`python3 -m cocaine.worker [--socket PATH] [--app NAME] CODE_PATH`: runs one worker.

The node starts this with the environment of docs/protocol.md §1. The app is imported before the
worker connects, so an app that cannot even be imported fails with its traceback on stderr and
exit code 1, and the node reports that instead of a silent handshake timeout.
"""

import os
import sys
from _socket import AF_UNIX, SOCK_STREAM
from _socket import socket as _unix_socket

from . import _log
from .app import AppLoadError, Handlers, load_app
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


_USAGE = "usage: python3 -m cocaine.worker [-h] [--socket SOCKET] [--app APP] CODE_PATH"

_HELP = _USAGE + """

Run a Cocaine worker for a Python app (a .py file or a package directory).

positional arguments:
  CODE_PATH

options:
  -h, --help       show this help message and exit
  --socket SOCKET  the node's Unix socket (default: $COCAINE_SOCKET)
  --app APP        the app's name, for diagnostics (default: $COCAINE_APP)
"""


class _Args:
    socket = None
    app = None
    code_path = None
    worker_id = None
    concurrency = None


def _usage_error(message):
    """Exits with code 2 and the usage, as argparse would (argparse itself is slow to import)."""
    sys.stderr.write("%s\npython3 -m cocaine.worker: error: %s\n" % (_USAGE, message))
    sys.exit(2)


def _parse_args(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _Args()
    positional = []
    while argv:
        arg = argv.pop(0)
        if arg in ("-h", "--help"):
            sys.stdout.write(_HELP)
            sys.exit(0)
        name, eq, value = arg.partition("=")
        if name in ("--socket", "--app"):
            if not eq:
                if not argv:
                    _usage_error("argument %s: expected one argument" % name)
                value = argv.pop(0)
            setattr(args, name[2:], value)
        elif arg == "--":
            positional.extend(argv)
            argv = []
        elif arg.startswith("-") and arg != "-":
            _usage_error("unrecognized arguments: %s" % arg)
        else:
            positional.append(arg)
    if len(positional) != 1:
        _usage_error("the following arguments are required: CODE_PATH" if not positional
                     else "unrecognized arguments: %s" % " ".join(positional[1:]))
    args.code_path = positional[0]
    args.socket = args.socket or os.environ.get("COCAINE_SOCKET")
    if not args.socket:
        _usage_error("no socket: pass --socket or set COCAINE_SOCKET")
    args.worker_id = os.environ.get("COCAINE_WORKER_ID")
    if not args.worker_id:
        _usage_error("COCAINE_WORKER_ID is not set")
    args.app = args.app or os.environ.get("COCAINE_APP") or os.path.basename(
        os.path.normpath(args.code_path))
    return args


def _env_concurrency():
    """COCAINE_CONCURRENCY: how many jobs the node gives this worker at once, if it says."""
    raw = os.environ.get("COCAINE_CONCURRENCY", "")
    if not raw:
        return None
    try:
        value = int(raw)
        if value > 0:
            return value
    except ValueError:
        pass
    _log.log("COCAINE_CONCURRENCY=%r is not a positive number; running jobs on threads" % raw)
    return None


def main(argv=None):
    """Runs the worker; returns the exit code."""
    args = _parse_args(argv)
    _log.set_identity(args.app, args.worker_id)

    handlers = load_handlers(args.code_path)
    if handlers is None:
        return 1
    return serve(handlers, args.socket, args.worker_id)


def load_handlers(code_path):
    """The app's handlers, or None once the reason it cannot be loaded is logged."""
    try:
        return Handlers(load_app(code_path))
    except AppLoadError as e:
        _log.log("cannot load the app: %s" % e)
    except BaseException as e:  # the app's own import failed: show where, as Python would
        _log.log_exception("importing %s failed" % code_path, e)
    return None


def serve(handlers, socket_path, worker_id):
    """Connects to the node and serves it; returns the exit code. The settings come from the
    environment (docs/protocol.md §1), read here so a worker forked by the fork server
    (zygote.py) reads its own."""
    heartbeat_s = _env_ms("COCAINE_HEARTBEAT_MS", DEFAULT_HEARTBEAT_MS)
    timeout_s = _env_ms("COCAINE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)
    max_message = _env_bytes("COCAINE_MAX_MESSAGE")
    sock = _unix_socket(AF_UNIX, SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError as e:
        _log.log("cannot connect to %s: %s" % (socket_path, e))
        return 1
    return Worker(sock, handlers, worker_id, heartbeat_s, timeout_s, max_message,
                  _env_concurrency()).run()


def run():
    """The process's entry point. The node starts workers with
    `python -c "import cocaine.worker as w; w.run()" ...`: `-m cocaine.worker` means the same,
    but `runpy` imports `importlib.util` and with it `contextlib`, `collections` and
    `functools`, ~9 ms of a worker's start that nothing else needs."""
    try:
        _log.flush_and_exit(main())
    except KeyboardInterrupt:
        _log.flush_and_exit(130)


if __name__ == "__main__":
    run()
