"""A fake node for the tests: listens on a Unix socket and runs a real worker subprocess.

Replies are decoded with the built-in codec (whatever codec the worker uses), so the tests
check the exact types on the wire: chunks must arrive as bin (bytes), messages as str.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

from cocaine import _msgpack

ADAPTER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ADAPTER_DIR, "examples", "echo.py")
JOBS_APP = os.path.join(ADAPTER_DIR, "tests", "apps", "jobs.py")

# Upper bound for any single wait; every wait is for an event, so this only matters when a
# test is about to fail.
TIMEOUT = 5.0


def frame(message):
    body = _msgpack.packb(message)
    return struct.pack(">I", len(body)) + body


class FakeNode:
    """One worker process and the node end of its channel.

    `env` adds to or overrides the worker's environment; a value of None removes a variable.
    """

    def __init__(self, app=EXAMPLE, env=None, pythonpath=None, args=None, listen=True):
        self.dir = tempfile.mkdtemp(dir="/tmp", prefix="cw")
        self.path = os.path.join(self.dir, "s")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.conn = None
        self.stderr_path = os.path.join(self.dir, "stderr")
        full_env = dict(os.environ)
        full_env.update({
            "PYTHONPATH": os.pathsep.join((pythonpath or []) + [ADAPTER_DIR]),
            "COCAINE_SOCKET": self.path,
            "COCAINE_WORKER_ID": "w-1",
            "COCAINE_APP": "test",
            "COCAINE_HEARTBEAT_MS": "5000",
            "COCAINE_TIMEOUT_MS": "30000",
        })
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        if args is None:
            args = ["--socket", self.path, app]
        try:
            with open(self.stderr_path, "wb") as stderr:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "cocaine.worker"] + args,
                    env=full_env, cwd=app if os.path.isdir(app) else os.path.dirname(app),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        except BaseException:
            self.listener.close()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def accept(self):
        """Accepts the worker's connection and returns its handshake message."""
        self.listener.settimeout(TIMEOUT)
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(TIMEOUT)
        return self.recv()

    def wait_exit(self, timeout=TIMEOUT):
        return self.proc.wait(timeout)

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for sock in (self.conn, self.listener):
            if sock is not None:
                sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- messages ----------------------------------------------------------------------------

    def send(self, *message):
        self.conn.sendall(frame(list(message)))

    def send_raw(self, data):
        self.conn.sendall(data)

    def recv_raw(self, timeout=TIMEOUT):
        """The next frame body; raises socket.timeout if none arrives, EOFError at EOF."""
        self.conn.settimeout(timeout)
        (length,) = struct.unpack(">I", self._exactly(4))
        return self._exactly(length)

    def recv(self, timeout=TIMEOUT, skip_heartbeats=True):
        """The next message, decoded; heartbeats are skipped unless asked for."""
        while True:
            message = _msgpack.unpackb(self.recv_raw(timeout))
            if not (skip_heartbeats and message == [2]):
                return message

    def recv_until_eof(self):
        """Every message (heartbeats skipped) until the worker closes the channel."""
        messages = []
        while True:
            try:
                messages.append(self.recv())
            except EOFError:
                return messages

    def call(self, sid, event, *chunks):
        """Sends a whole request and returns the messages of its reply, up to 5 or 6."""
        self.send(3, sid, event, {})
        for chunk in chunks:
            self.send(4, sid, chunk)
        self.send(5, sid)
        return self.reply(sid)

    def reply(self, sid):
        messages = []
        while True:
            message = self.recv()
            if message[1] != sid:
                raise AssertionError("expected a message for %d, got %r" % (sid, message))
            messages.append(message)
            if message[0] in (5, 6):
                return messages

    def replies(self, *sids):
        """The replies of several jobs whose messages may interleave: {sid: messages}."""
        open_sids = set(sids)
        got = {sid: [] for sid in sids}
        while open_sids:
            message = self.recv()
            if message[1] not in open_sids:
                raise AssertionError("unexpected message %r" % (message,))
            got[message[1]].append(message)
            if message[0] in (5, 6):
                open_sids.discard(message[1])
        return got

    def _exactly(self, n):
        data = b""
        while len(data) < n:
            piece = self.conn.recv(n - len(data))
            if not piece:
                raise EOFError("the worker closed the channel")
            data += piece
        return data


class WorkerTestCase:
    """Mixin for unittest.TestCase: `self.start()` runs a worker and handshakes with it."""

    def start(self, app=EXAMPLE, **kwargs):
        node = FakeNode(app, **kwargs)
        self.addCleanup(node.close)
        handshake = node.accept()
        self.assertEqual(handshake, [1, "w-1", 1, node.proc.pid])
        return node
