"""The node's end of one worker channel: a real Unix socket and a real worker process.

The fake node listens, starts the worker command with the environment a node gives
(`COCAINE_SOCKET`, `COCAINE_WORKER_ID`, ...), accepts its connection and then sends and
reads frames (u32 big-endian length + msgpack array) exactly as the node would.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import msgpack

# Upper bound for any single wait; every wait is for an event, so it only matters when a
# worker is about to fail a scenario.
TIMEOUT = 5.0
# Upper bound for a worker's start, up to its connection: an interpreter's start is not what a
# scenario judges, and on a loaded machine (a page cache emptied by builds, load 20) it can
# take seconds. A worker that exits meanwhile fails at once.
START_TIMEOUT = 30.0

WORKER_ID = "w-conformance"

# Message kinds of the worker channel.
HANDSHAKE, HEARTBEAT, INVOKE, CHUNK, CHOKE, ERROR, CANCEL, TERMINATE = range(1, 9)


class Failure(AssertionError):
    """A worker did not behave as the protocol says."""


def frame(message):
    body = msgpack.packb(message, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


def decode(body):
    return msgpack.unpackb(body, raw=False, strict_map_key=False)


class FakeNode:
    """One worker process and the node end of its channel.

    `command` is the worker's argv; `env` adds to or overrides the environment the node
    gives (a value of None removes a variable).
    """

    def __init__(self, command, env=None, cwd=None, socket_path=None):
        self.dir = tempfile.mkdtemp(dir="/tmp", prefix="cconf")
        self.path = socket_path or os.path.join(self.dir, "s")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(os.path.join(self.dir, "s"))
        self.listener.listen(1)
        self.conn = None
        self.buffer = b""
        self.heartbeats = 0  # heartbeats skipped by recv()
        self.stderr_path = os.path.join(self.dir, "stderr")
        full_env = dict(os.environ)
        full_env.update({
            "COCAINE_SOCKET": self.path,
            "COCAINE_WORKER_ID": WORKER_ID,
            "COCAINE_APP": "conformance",
            "COCAINE_HEARTBEAT_MS": "5000",
            "COCAINE_TIMEOUT_MS": "30000",
            "COCAINE_MAX_MESSAGE": str(64 * 1024 * 1024),
        })
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        self.started = time.monotonic()
        try:
            with open(self.stderr_path, "wb") as stderr:
                self.proc = subprocess.Popen(
                    command, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        except BaseException:
            self.listener.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def accept(self, timeout=TIMEOUT, start_timeout=START_TIMEOUT):
        """Accepts the worker's connection (within `start_timeout` of its start); returns its
        first message (within `timeout` of the connection)."""
        deadline = time.monotonic() + start_timeout
        self.listener.settimeout(0.05)
        while self.conn is None:
            try:
                self.conn, _ = self.listener.accept()
            except socket.timeout:
                code = self.proc.poll()
                if code is not None:
                    raise Failure("the worker exited with code %d before connecting%s"
                                  % (code, self.why()))
                if time.monotonic() > deadline:
                    raise Failure("the worker did not connect within %.1fs%s"
                                  % (start_timeout, self.why()))
        return self.recv(timeout, skip_heartbeats=False)

    def handshake(self):
        """Accepts the worker and checks its handshake `[1, worker_id, 1, pid]`."""
        first = self.accept()
        expect(first == [HANDSHAKE, WORKER_ID, 1, self.proc.pid],
               "first message %r, expected the handshake [1, %r, 1, %d]"
               % (first, WORKER_ID, self.proc.pid))
        return first

    def wait_exit(self, timeout=TIMEOUT):
        """The worker's exit code; fails if it still runs after `timeout`."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("the worker still runs %.1fs later%s" % (timeout, self.why()))

    def running_after(self, seconds):
        """Whether the worker still runs `seconds` from now (used where staying up is the
        behaviour under test, so a wait cannot be replaced by an event)."""
        try:
            self.proc.wait(seconds)
            return False
        except subprocess.TimeoutExpired:
            return True

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def why(self):
        text = self.stderr().strip()
        return "; worker stderr:\n%s" % text[-2000:] if text else ""

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        for sock in (self.conn, self.listener):
            if sock is not None:
                sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def hang_up(self):
        """Closes the node's end, as a node that went away."""
        self.conn.close()
        self.conn = None

    # -- messages ----------------------------------------------------------------------------

    def send(self, *message):
        self.conn.sendall(frame(list(message)))

    def send_raw(self, data):
        self.conn.sendall(data)

    def recv_raw(self, timeout=TIMEOUT):
        """The next frame body; Failure on timeout, EOFError at EOF."""
        deadline = time.monotonic() + timeout
        (length,) = struct.unpack(">I", self._exactly(4, deadline))
        return self._exactly(length, deadline)

    def recv(self, timeout=TIMEOUT, skip_heartbeats=True):
        """The next message, decoded; heartbeats are counted and skipped unless asked for."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.recv_raw(max(0.0, deadline - time.monotonic()))
            try:
                message = decode(body)
            except Exception as e:
                raise Failure("the worker sent a frame that is not msgpack (%s): %r"
                              % (e, body[:64]))
            check_shape(message)
            if skip_heartbeats and message == [HEARTBEAT]:
                self.heartbeats += 1
                continue
            return message

    def expect_eof(self, timeout=TIMEOUT):
        """Reads until the worker closes the channel; returns what came (heartbeats skipped)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self.recv(max(0.0, deadline - time.monotonic())))
            except EOFError:
                return got

    def call(self, sid, event, *chunks, meta=None):
        """Sends a whole request and returns the messages of its reply, up to 5 or 6."""
        self.send(INVOKE, sid, event, meta or {})
        for chunk in chunks:
            self.send(CHUNK, sid, chunk)
        self.send(CHOKE, sid)
        return self.reply(sid)

    def reply(self, sid, timeout=TIMEOUT):
        return self.replies(sid, timeout=timeout)[sid]

    def replies(self, *sids, timeout=TIMEOUT):
        """The replies of jobs whose messages may interleave: {sid: messages up to 5 or 6}."""
        open_sids = set(sids)
        got = {sid: [] for sid in sids}
        deadline = time.monotonic() + timeout
        while open_sids:
            remaining = deadline - time.monotonic()
            try:
                message = self.recv(max(0.0, remaining))
            except EOFError:
                raise Failure("the worker closed the channel; waiting for %s%s"
                              % (sorted(open_sids), self.why()))
            if message[0] not in (CHUNK, CHOKE, ERROR) or message[1] not in open_sids:
                raise Failure("unexpected message %s while waiting for jobs %s"
                              % (short(message), sorted(open_sids)))
            got[message[1]].append(message)
            if message[0] in (CHOKE, ERROR):
                open_sids.discard(message[1])
        return got

    def _exactly(self, n, deadline):
        while len(self.buffer) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Failure("no message from the worker in time%s" % self.why())
            self.conn.settimeout(remaining)
            try:
                piece = self.conn.recv(65536)
            except socket.timeout:
                raise Failure("no message from the worker in time%s" % self.why())
            except ConnectionResetError:
                piece = b""
            if not piece:
                if self.buffer:
                    raise Failure("the worker closed the channel in the middle of a frame")
                raise EOFError("the worker closed the channel")
            self.buffer += piece
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def expect(condition, message):
    if not condition:
        raise Failure(message)


def check_shape(message):
    """Checks a worker -> node message against the protocol's table of kinds."""
    ok = isinstance(message, list) and message and isinstance(message[0], int)
    if ok:
        kind, args = message[0], message[1:]
        types = {
            HANDSHAKE: (str, int, int),
            HEARTBEAT: (),
            CHUNK: (int, bytes),
            CHOKE: (int,),
            ERROR: (int, int, str),
            TERMINATE: (str,),
        }.get(kind)
        ok = types is not None and len(args) == len(types) and all(
            type(a) is t for a, t in zip(args, types))
    expect(ok, "malformed message from the worker: %r (chunks must be msgpack bin, "
               "messages str)" % (message,))


def short(value, limit=48):
    """repr() with long bytes and lists cut, for failure messages."""
    if isinstance(value, bytes) and len(value) > limit:
        return "%r...(%d bytes)" % (value[:limit], len(value))
    if isinstance(value, list):
        items = [short(v, limit) for v in value[:12]]
        if len(value) > 12:
            items.append("...(%d items)" % len(value))
        return "[%s]" % ", ".join(items)
    return repr(value)


def body_of(messages):
    """The joined chunks of a reply that ended with [5]; Failure otherwise."""
    expect(messages and messages[-1][0] == CHOKE,
           "expected a reply ending with [5, sid], got %s" % short(messages))
    expect(all(m[0] == CHUNK for m in messages[:-1]), "unexpected messages %s" % short(messages))
    return b"".join(m[2] for m in messages[:-1])


def error_of(messages):
    """(code, message) of a reply that ended with [6]; Failure otherwise."""
    expect(messages and messages[-1][0] == ERROR,
           "expected a reply ending with [6, sid, code, message], got %s" % short(messages))
    return messages[-1][2], messages[-1][3]
