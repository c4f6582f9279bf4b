"""A client for the native protocol (docs/protocol.md §2): calls to an app's native-server task.

    from cocaine.client import Client

    with Client("tcp://127.0.0.1:9100") as client:
        print(client.call("echo", b"hello"))          # b"hello"
        request = client.request("stream")            # both sides stream
        request.write(b"one")
        request.end()
        for chunk in request:
            print(chunk)

One `Client` is one ZeroMQ DEALER connection. Several requests may be in flight on it: replies
are sorted by the request's `sid`, so reading one request's chunks keeps the others' for later.
A `Client` is not thread-safe (neither is a ZeroMQ socket): use one per thread.

Signed requests (docs/security.md): `Client(endpoint, user="alice", key="alice.key",
app="echo")` signs every request's open as `alice` for the app `echo`, over the SHA-256 of the
request's whole body. A signed open must know its body, so a signed `request()` keeps its
chunks until `end()` and then sends the open, the chunks and the end at once; its reply can be
read only after `end()` (the node holds a signed request until its end anyway).

This module needs `pyzmq` (`pip install './adapters/python[client]'`), and signing needs
`cryptography` (in the same extra), imported only when a client signs; the worker side of the
package needs neither, so `import cocaine` never imports them.
"""

import itertools
import time

import zmq

from . import protocol

__all__ = ["CallError", "Client", "Request"]

OPEN = 3
CHUNK = 4
END = 5
ERROR = 6
CANCEL = 7
PING = 9
PONG = 10

# A request whose caller gave up is cancelled, and its late messages dropped; the ids of such
# requests are kept this long so a late message is told apart from a protocol error.
_FORGOTTEN_LIMIT = 4096


# How much longer than a request's own `timeout` a call waits for the node's answer.
_SLACK = 1.0


class CallError(Exception):
    """The node or the app answered a request with an error: `code` (HTTP-like: 503 the queue
    is full, 504 a timeout, 499 cancelled, 500 the handler failed...) and `message`."""

    def __init__(self, code, message):
        super().__init__("%d %s" % (code, message))
        self.code = code
        self.message = message


class Request:
    """One request on a `Client`: write request chunks, `end()` it, then iterate the reply's
    chunks (or take them joined with `result()`). An error reply raises `CallError`."""

    def __init__(self, client, sid, held=None):
        self._client = client
        self.sid = sid
        # A signed request's open, kept with its chunks until `end()`: (event, policy, chunks).
        self._held = held
        self._chunks = []
        self._done = False
        self._error = None
        self._ended = False
        # A sealed request's nonce: its reply is one chunk sealed for the user, bound to it.
        self._seal_nonce = None

    def write(self, data):
        """Sends one request chunk (bytes, or str as UTF-8)."""
        if self._ended:
            raise ValueError("request %d already ended" % self.sid)
        if isinstance(data, str):
            data = data.encode()
        if self._held is not None:
            self._held[2].append(bytes(data))
        else:
            self._client._send([CHUNK, self.sid, bytes(data)])

    def end(self):
        """Ends the request stream; the reply may already be under way. A signed request is
        signed and sent now."""
        if not self._ended:
            self._ended = True
            if self._held is not None:
                event, policy, chunks = self._held
                self._held = None
                self._client._send_whole(self.sid, event, policy, chunks)
            else:
                self._client._send([END, self.sid])

    def cancel(self):
        """Asks the node to stop the request; its reply still ends, usually with 499. A signed
        request not yet ended never left the client: it ends here with 499."""
        if self._held is not None:
            self._held = None
            self._ended = self._done = True
            self._error = CallError(499, "cancelled before it was sent")
            self._client._open.pop(self.sid, None)
            return
        self._client._send([CANCEL, self.sid])

    @property
    def done(self):
        """Whether the reply has ended (with its end or an error)."""
        return self._done

    def chunks(self, timeout=None):
        """The reply's chunks as they arrive. Raises `CallError` for an error reply, and
        `TimeoutError` (after cancelling the request) when the reply does not end within
        `timeout` seconds (the client's default when None)."""
        if self._held is not None:
            raise RuntimeError("request %d is signed: its reply starts after end()" % self.sid)
        deadline = self._client._deadline(timeout)
        while True:
            while self._chunks:
                yield self._chunks.pop(0)
            if self._done:
                if self._error is not None:
                    raise self._error
                return
            self._client._receive_until(deadline, self)

    def __iter__(self):
        return self.chunks()

    def result(self, timeout=None):
        """The whole reply, its chunks joined."""
        return b"".join(self.chunks(timeout))

    # -- filled by the client -----------------------------------------------------------------

    def _file(self, message):
        kind = message[0]
        if kind == CHUNK and len(message) == 3 and isinstance(message[2], bytes):
            if self._seal_nonce is not None:
                from ._seal import SealError
                try:
                    self._chunks.append(self._client._sealing.open(self._seal_nonce, message[2]))
                except SealError as error:
                    self._done = True
                    self._error = CallError(502, str(error))
                return
            self._chunks.append(message[2])
        elif kind == END and len(message) == 2:
            self._done = True
        elif (kind == ERROR and len(message) == 4 and isinstance(message[2], int)
              and isinstance(message[3], str)):
            self._done = True
            self._error = CallError(message[2], message[3])
        else:
            self._done = True
            self._error = CallError(502, "malformed reply from the node: %r" % (message,))


class Client:
    """A connection to a native-server task at `endpoint` (`tcp://HOST:PORT`, `ipc://PATH`).

    `timeout` (seconds) is how long a call waits for its whole reply unless told otherwise;
    ZeroMQ connects in the background, so an absent node shows as that timeout.

    With `user`, `key` and `app`, every request is signed as `user` for the app `app` (the node
    refuses it for any other app): `key` is the path of the user's RSA private key in PEM (as
    `cocaine keygen` writes it; a file other users may read is refused) or a loaded
    `cryptography` RSA private key. A refused signature is a `CallError` (401, 403).

    With `session=True` as well, one signed request opens a session and later requests carry an
    HMAC under its key instead of a signature (docs/security.md, "Session keys"); the session is
    renewed before it ends, and a call refused because the node no longer knows the session is
    retried once in a new one.

    With `seal=True` and `node_key` (the node's public key: its `node.pem` path, PEM text, or a
    `cryptography` key), every request's body is also sealed for the node and its reply, sealed
    by the node for `user`, is opened here (docs/security.md, "Sealed bodies"). Sealing needs
    signing: the node seals the reply for the user who signed. A sealed request is signed per
    request, so `seal=True` and `session=True` do not go together (ValueError)."""

    def __init__(self, endpoint, timeout=30.0, context=None, user=None, key=None, app=None,
                 session=False, seal=False, node_key=None):
        self._sessions = None
        if seal and session:
            raise ValueError("seal=True and session=True do not go together: a sealed request "
                             "is signed per request (the node refuses it in a session, 400)")
        if (user, key, app) != (None, None, None):
            if None in (user, key, app):
                raise ValueError("signing needs all of user=, key= and app=")
            from ._signing import Signing  # imports `cryptography`, needed only here
            self._signing = Signing(user, key, app)
            if session:
                from ._session import Sessions
                self._sessions = Sessions(self._signing)
        else:
            if session:
                raise ValueError("a session needs user=, key= and app=")
            self._signing = None
        self._sealing = None
        if seal:
            if self._signing is None:
                raise ValueError("seal=True needs user=, key= and app=: the reply is sealed "
                                 "for the signing user")
            if node_key is None:
                raise ValueError("seal=True needs node_key= (the node's public key)")
            from ._seal import Sealing
            self._sealing = Sealing(node_key, self._signing._key, user, app)
        self.endpoint = endpoint
        self.timeout = timeout
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
        self._sids = itertools.count(1)
        self._open = {}
        self._forgotten = {}
        self._pongs = set()
        self.connection_errors = []

    # -- calls --------------------------------------------------------------------------------

    def request(self, event="", urgent=False, deadline=None, timeout=None):
        """Opens a request for `event` ("" = the task's own name) and returns it, to write to
        and read from. `deadline` (seconds from now) and `timeout` (seconds from dispatch)
        bound it on the node; `urgent` puts it at the front of the app's queue."""
        sid = next(self._sids)
        policy = _policy(urgent, deadline, timeout)
        if self._signing is not None:
            request = Request(self, sid, held=(event, policy, []))
            self._open[sid] = request
            return request
        request = Request(self, sid)
        self._open[sid] = request
        self._send([OPEN, sid, event, policy, None])
        return request

    def call(self, event="", body=b"", urgent=False, deadline=None, timeout=None):
        """Sends `body` as the whole request and returns the reply's chunks joined. With a
        `timeout`, the call waits a second longer than the node, so the node's 504 (a clear
        error) arrives rather than a local time out; without, it waits the client's default."""
        sid = next(self._sids)
        request = Request(self, sid)
        self._open[sid] = request
        if isinstance(body, str):
            body = body.encode()
        request._ended = True
        policy = _policy(urgent, deadline, timeout)
        self._send_whole(sid, event, policy, [bytes(body)])
        patience = None if timeout is None else timeout + _SLACK
        if self._sessions is None:
            return request.result(patience)
        from ._session import is_stale
        try:
            return request.result(patience)
        except CallError as error:
            if not is_stale(error):
                raise
        # The node forgot the session; nothing ran: once more in a new one.
        self._sessions.forget()
        sid = next(self._sids)
        request = Request(self, sid)
        self._open[sid] = request
        request._ended = True
        self._send_whole(sid, event, policy, [bytes(body)])
        return request.result(patience)

    def ping(self, timeout=None):
        """Round-trip time to the node in seconds (a protocol ping, answered by the node
        itself, not by a worker)."""
        token = next(self._sids)
        start = time.monotonic()
        self._send([PING, token])
        deadline = self._deadline(timeout)
        while token not in self._pongs:
            self._receive_until(deadline, None)
        self._pongs.discard(token)
        return time.monotonic() - start

    def close(self):
        self._socket.close(0)

    @staticmethod
    def cluster(controls, app, task, **options):
        """A `cocaine.cluster.ClusterClient`: calls to task `task` of `app` balanced over
        every node of the cluster by load, found through any of the control endpoints
        `controls` (docs/cluster.md, "How balancing chooses")."""
        from .cluster import ClusterClient

        return ClusterClient(controls, app, task, **options)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the socket ---------------------------------------------------------------------------

    def _send(self, message):
        self._socket.send(protocol.pack(message))

    def _open_session(self):
        """Opens a session when there is none fresh: a signed session-open, its grant."""
        if not self._sessions.needs_open():
            return
        sid = next(self._sids)
        request = Request(self, sid)
        self._open[sid] = request
        request._ended = True
        self._send_whole(sid, "cocaine.session", {}, [], session_open=True)
        self._sessions.granted(request.result())

    def _send_whole(self, sid, event, policy, chunks, session_open=False):
        """A whole request in one multipart message: the open (signed when signing), its
        chunks, its end."""
        if self._sessions is not None and not session_open:
            self._open_session()
            opening = self._sessions.open(sid, event, policy, chunks)
        elif self._sealing is not None:
            nonce = self._signing.nonce()
            chunks = [self._sealing.seal(nonce, b"".join(chunks))]
            policy = dict(policy, sealed=True)
            opening = self._signing.open(sid, event, policy, chunks, nonce=nonce)
            if sid in self._open:
                self._open[sid]._seal_nonce = nonce
        elif self._signing is not None:
            opening = self._signing.open(sid, event, policy, chunks)
        else:
            opening = protocol.pack([OPEN, sid, event, policy, None])
        self._socket.send_multipart(
            [opening] + [protocol.pack([CHUNK, sid, chunk]) for chunk in chunks]
            + [protocol.pack([END, sid])])

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _receive_until(self, deadline, waiting):
        """Receives one multipart message and files it; on time out cancels `waiting`."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._socket.poll(int(remaining * 1000) + 1):
            if waiting is None:
                raise TimeoutError("no pong from %s" % self.endpoint)
            self._give_up(waiting)
            raise TimeoutError("request %d to %s: no complete reply in time"
                               % (waiting.sid, self.endpoint))
        for frame in self._socket.recv_multipart():
            if not frame:
                continue  # a leading empty frame is tolerated
            try:
                message = protocol.unpack(frame)
            except ValueError as error:
                # Not a message: nothing tells which request it was for, so the requests go
                # on (and time out if their replies never come); the fault is kept to see.
                self.connection_errors.append("undecodable frame %r: %s" % (frame[:64], error))
                continue
            self._file(message)

    def _file(self, message):
        if not isinstance(message, list) or len(message) < 2:
            self.connection_errors.append(message)
            return
        kind, sid = message[0], message[1]
        if kind == PONG:
            self._pongs.add(sid)
        elif kind == PING:
            self._send([PONG, sid])
        elif kind == ERROR and sid == 0:
            # Something this client sent could not be decoded: a bug here, not in a request.
            self.connection_errors.append(message)
        elif sid in self._open:
            request = self._open[sid]
            request._file(message)
            if request._done:
                del self._open[sid]
        elif sid not in self._forgotten:
            self.connection_errors.append(message)

    def _give_up(self, request):
        """A request whose caller stopped waiting is cancelled and its late reply dropped."""
        if self._open.pop(request.sid, None) is None:
            return
        self._send([CANCEL, request.sid])
        self._forgotten[request.sid] = True
        if len(self._forgotten) > _FORGOTTEN_LIMIT:
            del self._forgotten[next(iter(self._forgotten))]


def _policy(urgent, deadline, timeout):
    policy = {}
    if urgent:
        policy["urgent"] = True
    if deadline is not None:
        policy["deadline"] = _milliseconds(deadline)
    if timeout is not None:
        policy["timeout"] = _milliseconds(timeout)
    return policy


def _milliseconds(seconds):
    if seconds < 0:
        raise ValueError("a negative time: %r" % (seconds,))
    return int(round(seconds * 1000))
