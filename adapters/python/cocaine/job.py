"""One job: its request, the running of its handler, and its reply.

A plain handler runs once the whole request has arrived, on whatever thread the worker's
runner gives it (runners.py): the reading thread itself, or a pool thread. A streaming one
runs as soon as the job starts, on a thread of its own, and reads the request as it comes.

A plain handler's reply goes out in one write: its chunks and its end (or error) together.
A generator's chunks go out as they are yielded, since it may take its time between them.
"""

import _thread
import time
from _queue import SimpleQueue

from . import protocol
from ._log import log_exception
from ._wire import frame_parts, one_chunk_reply
from .api import Cancelled, Error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Tuple, Union
    from contextvars import ContextVar
    from typing import Optional

__all__ = ["Job", "Request", "Response", "current"]

# The job whose handler runs on this thread, for `cocaine.http.request()` (`_thread._local`
# is `threading.local` without importing threading at start).
_current = _thread._local()


# Set by aio.py when the app has async handlers: the job of the running asyncio task.
task_job: "Optional[ContextVar[Optional[Job]]]" = None


def current():
    """The job whose handler runs on the calling thread (or asyncio task), or None."""
    job = getattr(_current, "job", None)
    if job is None and task_job is not None:
        job = task_job.get()
    return job

# Markers put in a streaming job's request queue after its chunks.
_END = object()
_CANCELLED = object()

_CHUNK_TYPES = (bytes, bytearray, memoryview, str)


def to_bytes(chunk):
    """A reply chunk as bytes: bytes-like values as they are, `str` as UTF-8."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    raise TypeError("a reply chunk must be bytes or str, not %s" % type(chunk).__name__)


def describe(exc):
    """`"<ExceptionType>: <text>"`, the message of a 502 (just the type when there is no text)."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    name = type(exc).__name__
    return "%s: %s" % (name, text) if text else name


class Job:
    """A job started by `[3, sid, event, meta]`.

    The reading thread feeds it (`feed`, `end_request`, `cancel`); whichever thread runs its
    handler writes the reply through the channel. `ended`, `cancelled` and `running` belong to
    the channel's lock (`running` is set when the job is handed to a runner, before any other
    thread can see it, so the reading thread may set it alone).
    """

    # The aio.AsyncRunner of an `async def` handler's job (None: a synchronous handler).
    aio = None
    # The asyncio task running an async job's handler, once started.
    task = None
    task_began = False

    def __init__(self, sid, event, meta, handler, streaming, channel, on_done, parts=None,
                 meta_raw=None, request=None):
        self.sid = sid
        # The reply's chunk head and choke frame for this sid (_wire.frame_parts).
        self._parts = frame_parts(sid) if parts is None else parts
        self.event = event
        # The meta map, or None while it is still the msgpack bytes `_meta_raw` (see `meta`).
        self._meta = meta
        self._meta_raw = meta_raw
        self.handler = handler
        self.streaming = streaming
        self.ended = False
        self.cancelled = False
        self.started = False
        self.running = False
        # A job that came whole (_wire.read_job) is given its request at once.
        self.request_ended = request is not None
        self.began = 0.0
        self._channel = channel
        self._on_done = on_done
        self._chunks = [] if request is None else [request]
        # Frames of the reply not written yet: they go out with the reply's end.
        self._pending = []
        self.queue = SimpleQueue() if self.streaming else None
        self.replied = False  # a head or chunk went out: too late for a head

    @property
    def meta(self):
        """The invoke's meta map. A job that came whole in one read (_wire.read_job) keeps
        it undecoded until asked: a handler that never looks at it does not pay for it. A
        meta that does not decode raises protocol.ProtocolError here (the node never sends
        one)."""
        meta = self._meta
        if meta is None:
            meta = self._meta = protocol.decode_meta(self._meta_raw)
            self._meta_raw = None
        return meta

    # -- reading thread ----------------------------------------------------------------------

    def start_thread(self):
        """Runs a streaming handler in a new thread; `on_done(job)` is called when it ends."""
        self.started = True
        self.running = True
        # The worker leaves with os._exit, so this thread never holds it up, whatever a
        # handler is doing.
        _thread.start_new_thread(self.run, ())

    def feed(self, data):
        """A request chunk arrived; returns False if the request had already ended."""
        if self.request_ended:
            return False
        if self.streaming:
            self.queue.put(data)
        else:
            self._chunks.append(data)
        return True

    def end_request(self):
        """The request ended (`[5, sid]`); returns True when this makes a plain job ready to
        run (the caller hands it to a runner)."""
        if self.request_ended:
            return False
        self.request_ended = True
        if self.streaming:
            self.queue.put(_END)
            return False
        return True

    def cancel(self):
        """`[7, sid]`: drops the rest of the reply and stops the request; 499 goes out now if
        the handler is not running, otherwise once it returns."""
        self._channel.cancel(self)
        if self.streaming:
            self.queue.put(_CANCELLED)
        if self.aio is not None:
            self.aio.cancel(self)

    # -- the thread running the handler ------------------------------------------------------

    def run(self, poll=None, release=None):
        """Runs the handler and ends the job; `poll(job)`, if given, is called between a
        generator's chunks and before the reply goes out (see loop.Worker._poll), and
        `release()` just before the reply's end is written."""
        self.began = time.monotonic()
        _current.job = self
        failure = None
        reply = None
        try:
            if self.streaming:
                self.handler(Request(self), Response(self))
            else:
                chunks = self._chunks  # take_request(), without the call
                self._chunks = None
                result = self.handler(chunks[0] if len(chunks) == 1 else b"".join(chunks))
                # The usual reply, one bytes chunk and no head, is framed here in one go.
                if type(result) is list and len(result) == 1 and type(result[0]) is bytes \
                        and len(result[0]) < self._channel.max_message - 32 \
                        and not self._pending:
                    reply = one_chunk_reply(self._parts, result[0])
                else:
                    self.emit(result, poll)
        except BaseException as e:  # SystemExit from a handler must not end the worker either
            failure = e
        try:
            if poll is not None:
                poll(self)
            if release is not None:
                release()
            if reply is not None:
                self._channel.reply(self, reply, final=True)
            elif failure is None:
                self._finish()
            else:
                self._fail(failure)
        finally:
            _current.job = None
            if self.ended:  # only this thread ends a running job: no 499 to send
                self.running = False
            else:
                self._channel.settle(self)
            self._on_done(self)

    def take_request(self):
        """The whole request of a plain job, as one bytes value (once)."""
        chunks = self._chunks
        self._chunks = None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def emit(self, result, poll):
        """Sends what a plain handler returned: chunks, None, or a `cocaine.http.Response`."""
        split = None if type(result) is list else getattr(result, "_cocaine_split", None)
        if split is not None:  # a cocaine.http.Response
            (status, headers), result = split()
            self.head(status, headers)
        if result is None:
            return
        if isinstance(result, _CHUNK_TYPES):
            result = (result,)  # a lone chunk instead of a list of one: accept it
        if type(result) is list or type(result) is tuple:
            # All there already: the chunks go out with the end, in one write.
            chunk_frame, sid = self._channel.chunk_frame, self.sid
            for chunk in result:
                self._pending.append(chunk_frame(sid, to_bytes(chunk)))
            return
        try:
            chunks = iter(result)
        except TypeError:
            raise TypeError("handler returned %s; expected an iterable of chunks or None"
                            % type(result).__name__) from None
        try:
            for chunk in chunks:
                if poll is not None:
                    poll(self)  # a cancel that came while the generator ran drops this chunk
                if not self.write(chunk):
                    break  # cancelled: stop pulling from a generator
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def write(self, chunk):
        """Sends one reply chunk now; False if it was dropped because the job has ended."""
        frame = self._channel.chunk_frame(self.sid, to_bytes(chunk))
        self.replied = True
        if self._pending:  # a head set before this first chunk
            self._pending.append(frame)
            frame = b"".join(self._pending)
            self._pending = []
        return self._channel.reply(self, frame, final=False)

    def head(self, status, headers):
        """Queues `[9, sid, head]`, the HTTP status and headers; it goes out with the first
        chunk or the end, in the same write."""
        from .http import check_head

        status, headers = check_head(status, headers)
        if self.replied:
            raise RuntimeError("job %d: the head must come before the first chunk" % self.sid)
        self.replied = True
        message = [protocol.HEAD, self.sid, {"status": status, "headers": headers}]
        self._pending.append(protocol.encode(message))
        return True

    def _end(self, frame):
        """Sends the reply's last frame, with any frames still pending before it."""
        if self._pending:
            self._pending.append(frame)
            frame = b"".join(self._pending)
            self._pending = []
        return self._channel.reply(self, frame, final=True)

    def _finish(self):
        return self._end(self._parts[1])

    def fail(self, code, message):
        """Ends the job with `[6, sid, code, message]`; False if it had already ended."""
        return self._end(self._channel.error_frame(self.sid, code, message))

    def _fail(self, exc):
        if self.cancelled and isinstance(exc, Cancelled):
            return  # the normal way out of a cancelled streaming handler
        if isinstance(exc, Error):
            self.fail(exc.code, exc.message)
            return
        log_exception("job %d (event %r) raised" % (self.sid, self.event), exc)
        self.fail(502, describe(exc))


class Request:
    """The request of a streaming job: iterating it yields its chunks (bytes) as they arrive.

    Iteration blocks until the next chunk, ends at the end of the request, and raises
    `cocaine.Cancelled` once the job is cancelled. `event` and `meta` (the invoke's map:
    `urgent`, `timeout`, `deadline`, `user`, `peer`, `task`, each optional) describe the job.
    """

    def __init__(self, job):
        self._job = job
        self._done = False
        self.sid = job.sid
        self.event = job.event
        self.meta = job.meta

    def __iter__(self) -> "Request":
        return self

    def __next__(self) -> bytes:
        if self._job.cancelled:
            raise Cancelled("job %d was cancelled" % self.sid)
        if self._done:
            raise StopIteration
        item = self._job.queue.get()
        if item is _CANCELLED:
            raise Cancelled("job %d was cancelled" % self.sid)
        if item is _END:
            self._done = True
            raise StopIteration
        return item

    def read(self) -> bytes:
        """The rest of the request as one bytes value (waits for its end)."""
        return b"".join(self)


class Response:
    """The reply of a streaming job.

    `write` after a cancel raises `cocaine.Cancelled`; after `close()` or `error()` it raises
    RuntimeError. `close` and `error` on an ended job do nothing, so cleanup code may call
    them unconditionally. Returning from the handler without either closes the reply.
    """

    def __init__(self, job):
        self._job = job

    @property
    def closed(self) -> bool:
        """Whether the reply has ended (closed, failed or cancelled)."""
        return self._job.ended or self._job.cancelled

    @property
    def cancelled(self) -> bool:
        """Whether the node cancelled the job."""
        return self._job.cancelled

    def write(self, chunk: "Union[bytes, bytearray, memoryview, str]") -> None:
        """Sends a chunk (bytes, or str sent as UTF-8)."""
        if not self._job.write(chunk):
            if self._job.cancelled:
                raise Cancelled("job %d was cancelled" % self._job.sid)
            raise RuntimeError("job %d: write after the response was closed" % self._job.sid)

    def close(self) -> None:
        """Ends the reply successfully."""
        self._job._finish()

    def head(self, status: int, headers: "Iterable[Tuple[str, str]]" = ()) -> None:
        """Sets the HTTP status and headers (a list of (name, value)); before any write."""
        self._job.head(status, headers)

    def error(self, code: int, message: object) -> None:
        """Ends the reply with an error code (e.g. 404, 500) and message."""
        if type(code) is not int or not 0 <= code <= 0xFFFFFFFF:
            raise ValueError("error code must be an integer in 0..2**32-1, got %r" % (code,))
        self._job.fail(code, str(message))
