"""`python3 -m cocaine.zygote CODE_PATH`: the fork server of one version of a Python app.

The node starts it with the environment a worker of the app gets and a Unix stream socket as
stdin. It imports the SDK and the app once, then forks a worker for each request from the
node, so a new worker costs a fork instead of an interpreter start and every import.

Wire (all integers big-endian):

- zygote to node, once: `R` when the app is imported and forking is safe; or `U`, a u32
  length and a reason in UTF-8 when it is not (the app started a thread or left a file
  descriptor open at import: a fork would share or lose them), after which it exits. An app
  that fails to import exits with its traceback on stderr, as a worker would.
- node to zygote, per worker: a u32 length, then that many bytes of NUL-separated fields
  (worker id, channel socket path, working folder, then `NAME=value` for each variable of the
  worker's environment), with one descriptor passed alongside (SCM_RIGHTS): the write end of
  the pipe that becomes the worker's stdout and stderr.
- zygote to node, per request: `P` and the worker's pid as an i32, or `E`, a u32 length and
  an error in UTF-8.

The worker is forked through a short-lived middle process that exits at once, so the worker
is orphaned and, the node being a child subreaper, becomes the node's own child: the node
waits for it, signals its process group and reads its exit status as for any worker. The
reply goes out after the middle process is reaped, when that has happened.

In the worker, before any of its own code runs: its own process group, stdin from
/dev/null, stdout and stderr to the pipe, every other descriptor closed (the zygote's socket
among them), the folder and environment of the request. Random state is reseeded by the
`os.register_at_fork` hooks of the modules that hold it (`random` does so itself). The hash
seed of str and bytes is the zygote's, shared by the workers of one version.
"""

import os
import sys
from _socket import CMSG_LEN, SCM_RIGHTS, SOL_SOCKET
from _socket import socket as _socket

from . import _log
from .worker import load_handlers, serve

_MAX_REQUEST = 1 << 20


def _send(sock, kind, payload=b""):
    if kind in (b"U", b"E"):
        payload = len(payload).to_bytes(4, "big") + payload
    sock.sendall(kind + payload)


def _open_fds():
    # listdir's own descriptor is among those listed, and closed by the time it returns.
    return {int(fd) for fd in os.listdir("/proc/self/fd") if _is_open(int(fd))}


def _unsafe_reason(before):
    """Why forking would hand workers something they must not share, or None: a thread, or
    a descriptor the app's import opened (`before`: those open before it, which workers close
    as they start and nothing of the app holds)."""
    tasks = os.listdir("/proc/self/task")
    if len(tasks) > 1:
        return "the app started %d thread(s) at import" % (len(tasks) - 1)
    extra = sorted(_open_fds() - before)
    if extra:
        return "the app left file descriptor(s) %s open at import" % extra
    return None


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _receive(sock):
    """One request: (fields, fd), or None when the node hung up."""
    header, ancillary, _flags, _addr = sock.recvmsg(4, CMSG_LEN(4))
    fds = []
    for level, kind, data in ancillary:
        if level == SOL_SOCKET and kind == SCM_RIGHTS:
            fds.extend(int.from_bytes(data[i:i + 4], sys.byteorder)
                       for i in range(0, len(data) - len(data) % 4, 4))
    if not header:
        for fd in fds:
            os.close(fd)
        return None
    if len(header) < 4:
        rest = _recv_exact(sock, 4 - len(header))
        if rest is None:
            return None
        header += rest
    length = int.from_bytes(header, "big")
    body = _recv_exact(sock, length) if length <= _MAX_REQUEST else None
    if body is None or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ValueError("malformed request from the node")
    return [os.fsdecode(f) for f in body.split(b"\0")], fds[0]


def _become_worker(fields, output, handlers):
    """Runs in the forked worker; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        worker_id, socket_path, cwd = fields[0], fields[1], fields[2]
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.closerange(3, _max_fd())
        if cwd:
            os.chdir(cwd)
        for entry in fields[3:]:
            name, _eq, value = entry.partition("=")
            os.environ[name] = value
        _log.set_identity(os.environ.get("COCAINE_APP", "?"), worker_id)
        code = serve(handlers, socket_path, worker_id)
    except BaseException as e:
        try:
            _log.log_exception("the forked worker failed", e)
        except BaseException:
            pass
    finally:
        _log.flush_and_exit(code)


def _max_fd():
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 1024


def _fork(fields, output, handlers):
    """Forks a worker through a middle process; returns its pid."""
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:
        try:
            os.close(r)
            pid = os.fork()
            if pid == 0:
                os.close(w)
                _become_worker(fields, output, handlers)
            try:
                # Set from both sides, so it holds whichever runs first.
                os.setpgid(pid, pid)
            except OSError:
                pass
            os.write(w, pid.to_bytes(4, "big", signed=True))
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(middle, 0)
    if len(data) != 4:
        raise OSError("the worker could not be forked")
    return int.from_bytes(data, "big", signed=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python3 -m cocaine.zygote CODE_PATH (stdin: the node's socket)\n")
        return 2
    _log.set_identity(os.environ.get("COCAINE_APP", "?"), "fork server")
    sock = _socket(fileno=os.dup(0))
    os.close(0)
    os.open(os.devnull, os.O_RDONLY)  # fd 0 again, as the workers will have it
    before = _open_fds()
    handlers = load_handlers(argv[0])
    if handlers is None:
        return 1
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    reason = _unsafe_reason(before)
    if reason is not None:
        _send(sock, b"U", reason.encode())
        return 0
    try:
        import gc

        # What the zygote holds stays shared with its workers: the collector of a worker
        # would otherwise write to every page of it.
        gc.freeze()
    except (ImportError, AttributeError):
        pass
    _send(sock, b"R")
    while True:
        try:
            request = _receive(sock)
        except ValueError as e:
            _log.log(str(e))
            return 1
        except OSError:
            return 0
        if request is None:
            return 0
        fields, output = request
        try:
            pid = _fork(fields, output, handlers)
        except OSError as e:
            _send(sock, b"E", str(e).encode())
            continue
        finally:
            os.close(output)
        _send(sock, b"P", pid.to_bytes(4, "big", signed=True))


if __name__ == "__main__":
    try:
        _log.flush_and_exit(main())
    except KeyboardInterrupt:
        _log.flush_and_exit(130)
