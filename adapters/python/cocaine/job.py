"""One job: its request, the thread running its handler, and its reply.

A plain handler runs once the whole request has arrived; a streaming one runs as soon as the
job starts and reads the request as it comes. Either way the handler runs in its own thread so
jobs can overlap and the main thread keeps reading the socket (which is how a cancel reaches a
job that is busy).
"""

import queue
import threading

from . import protocol
from ._log import log_exception
from .api import Cancelled, Error, is_streaming

__all__ = ["Job", "Request", "Response"]

# Markers put in a streaming job's request queue after its chunks.
_END = object()
_CANCELLED = object()

_CHUNK_TYPES = (bytes, bytearray, memoryview, str)

# The job whose handler this thread runs, for `cocaine.http.request()`.
_current = threading.local()


def current():
    """The job whose handler runs in this thread, or None."""
    return getattr(_current, "job", None)


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

    The main thread feeds it (`feed`, `end_request`, `cancel`); its handler thread writes the
    reply through the channel. `ended`, `cancelled` and `running` belong to the channel's lock
    (`running` is set before the handler thread exists, so the main thread may set it alone).
    """

    def __init__(self, sid, event, meta, handler, channel, on_done):
        self.sid = sid
        self.event = event
        self.meta = meta
        self.handler = handler
        self.streaming = is_streaming(handler)
        self.ended = False
        self.cancelled = False
        self.started = False
        self.running = False
        self.request_ended = False
        self._channel = channel
        self._on_done = on_done
        self._chunks = []
        self.queue = queue.Queue() if self.streaming else None
        self.replied = False  # a head or chunk went out: too late for a head

    # -- main thread -------------------------------------------------------------------------

    def start(self):
        """Runs the handler in a new thread; `on_done(job)` is called when it has finished."""
        self.started = True
        self.running = True
        thread = threading.Thread(target=self._run, name="cocaine-job-%d" % self.sid)
        # A daemon thread: when the node goes away the worker exits at once, whatever a
        # handler is doing.
        thread.daemon = True
        thread.start()

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
        """The request ended (`[5, sid]`): a plain handler can run now."""
        if self.request_ended:
            return
        self.request_ended = True
        if self.streaming:
            self.queue.put(_END)
        else:
            self.start()

    def cancel(self):
        """`[7, sid]`: drops the rest of the reply and stops the request; 499 goes out now if
        the handler is not running, otherwise once it returns."""
        self._channel.cancel(self)
        if self.streaming:
            self.queue.put(_CANCELLED)

    # -- handler thread ----------------------------------------------------------------------

    def _run(self):
        _current.job = self
        try:
            if self.streaming:
                self.handler(Request(self), Response(self))
            else:
                self._run_plain()
            self._finish()
        except BaseException as e:  # SystemExit from a handler must not end the worker either
            self._fail(e)
        finally:
            _current.job = None
            self._channel.settle(self)
            self._on_done(self)

    def _run_plain(self):
        request = b"".join(self._chunks)
        self._chunks = None
        result = self.handler(request)
        split = getattr(result, "_cocaine_split", None)  # a cocaine.http.Response
        if split is not None:
            (status, headers), result = split()
            self.head(status, headers)
        if result is None:
            return
        if isinstance(result, _CHUNK_TYPES):
            result = (result,)  # a lone chunk instead of a list of one: accept it
        try:
            chunks = iter(result)
        except TypeError:
            raise TypeError("handler returned %s; expected an iterable of chunks or None"
                            % type(result).__name__) from None
        try:
            for chunk in chunks:
                if not self.write(chunk):
                    break  # cancelled: stop pulling from a generator
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def write(self, chunk):
        """Sends one reply chunk; False if it was dropped because the job has ended."""
        frame = self._channel.chunk_frame(self.sid, to_bytes(chunk))
        self.replied = True
        return self._channel.reply(self, frame, final=False)

    def head(self, status, headers):
        """Sends `[9, sid, head]`: the HTTP status and headers, before any chunk."""
        from .http import check_head

        status, headers = check_head(status, headers)
        if self.replied:
            raise RuntimeError("job %d: the head must come before the first chunk" % self.sid)
        self.replied = True
        message = [protocol.HEAD, self.sid, {"status": status, "headers": headers}]
        return self._channel.reply(self, protocol.encode(message), final=False)

    def _finish(self):
        return self._channel.reply(self, protocol.encode([protocol.CHOKE, self.sid]), final=True)

    def fail(self, code, message):
        """Ends the job with `[6, sid, code, message]`; False if it had already ended."""
        frame = self._channel.error_frame(self.sid, code, message)
        return self._channel.reply(self, frame, final=True)

    def _fail(self, exc):
        if isinstance(exc, Cancelled) and self.cancelled:
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

    def __iter__(self):
        return self

    def __next__(self):
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

    def read(self):
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
    def closed(self):
        """Whether the reply has ended (closed, failed or cancelled)."""
        return self._job.ended or self._job.cancelled

    @property
    def cancelled(self):
        """Whether the node cancelled the job."""
        return self._job.cancelled

    def write(self, chunk):
        """Sends a chunk (bytes, or str sent as UTF-8)."""
        if not self._job.write(chunk):
            if self._job.cancelled:
                raise Cancelled("job %d was cancelled" % self._job.sid)
            raise RuntimeError("job %d: write after the response was closed" % self._job.sid)

    def close(self):
        """Ends the reply successfully."""
        self._job._finish()

    def head(self, status, headers=()):
        """Sets the HTTP status and headers (a list of (name, value)); before any write."""
        self._job.head(status, headers)

    def error(self, code, message):
        """Ends the reply with an error code (e.g. 404, 500) and message."""
        if type(code) is not int or not 0 <= code <= 0xFFFFFFFF:
            raise ValueError("error code must be an integer in 0..2**32-1, got %r" % (code,))
        self._job.fail(code, str(message))
