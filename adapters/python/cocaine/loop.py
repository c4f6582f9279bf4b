"""The worker's main loop: handshake, reading the channel, and turning messages into jobs.

One thread reads the socket. Each read takes everything the socket holds, cuts it into frames
and decodes them all before any handler runs. Plain handlers then run on a runner
(runners.py): inline on this same thread when the node gives the worker one job at a time
(`COCAINE_CONCURRENCY=1`), else on a bounded pool of threads that outlive their jobs.
Streaming handlers get a thread of their own, as they read their request while it arrives.
`async def` handlers run as tasks on an asyncio loop of its own thread (aio.py), loaded only
for an app that has one.

Heartbeats come from a thread that sleeps between them, so a long handler (even one running
inline) never makes the node take the worker for hung. While an inline handler runs, nothing
reads the socket; so once a handler has run for more than `_POLL_AFTER_S`, the worker reads
what arrived (a cancel, most usefully) after each chunk a generator yields and before the
reply goes out (see `_poll`).
"""

import os
import select
import struct
import _thread
import time
from _socket import MSG_DONTWAIT, SO_RCVTIMEO, SOL_SOCKET

from . import protocol
from ._log import flush_and_exit, log
from ._wire import read_hot, read_job
from .app import ASYNC, STREAMING
from .channel import Channel
from .job import Job
from .runners import make_runner

_INVOKE = protocol.INVOKE

# Exit codes, for the node's log: 0 the node let us go (EOF, terminate); 1 otherwise.
EXIT_OK = 0
EXIT_FAILED = 1

_READ_SIZE = 256 * 1024

# After this many malformed messages the worker stops logging them (the node would be broken).
_BAD_MESSAGE_LOG_LIMIT = 10

# An inline handler that has run this long gets the socket read for a cancel (see _poll).
# Shorter handlers do not: their reply crosses a cancel on the wire just as it would if the
# cancel had come a moment later, and the node takes either as the job's end.
_POLL_AFTER_S = 0.001

# How often the loop wakes while terminating with jobs still running on other threads, to see
# whether they are done.
_TERMINATING_TICK_S = 0.02


# After the node hangs up, how long the heartbeat thread lets the reading thread handle it.
_HANG_UP_GRACE_S = 0.1


def _timeval(seconds):
    whole = int(seconds)
    return struct.pack("@ll", whole, int((seconds - whole) * 1e6))


class Flag:
    """A one-way flag a thread can wait on with a timeout (threading.Event without the
    `threading` module, which the worker does not import: it costs startup time)."""

    def __init__(self):
        self._lock = _thread.allocate_lock()
        self._lock.acquire()  # held while the flag is down

    def set(self):
        if self._lock.locked():
            self._lock.release()

    def is_set(self):
        return not self._lock.locked()

    def wait(self, timeout):
        """Whether the flag went up within `timeout` seconds."""
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
            return True
        return False


class Worker:
    """Serves one node connection until the node lets it go or disappears.

    `handlers` is the app's app.Handlers. `concurrency` is how many jobs the node may give this worker at once (None: not known,
    so any number).
    """

    def __init__(self, sock, handlers, worker_id, heartbeat_s, timeout_s,
                 max_message=protocol.DEFAULT_MAX_MESSAGE, concurrency=None):
        self._sock = sock
        self._handlers = handlers
        self._aio = None
        if handlers.has_async():
            self._async_runner()  # before connecting: asyncio takes a while to import
        self._worker_id = worker_id
        self._heartbeat_s = heartbeat_s
        self._timeout_s = timeout_s
        self.channel = Channel(sock, max_message)
        self._runner = make_runner(concurrency, self._poll, self.channel,
                                   os.environ.get("COCAINE_INLINE", "") == "1")
        # sid -> Job for every job the node considers running. The reading thread adds and
        # looks up; a job is removed by whichever thread ends it.
        self._jobs = {}
        self._jobs_lock = _thread.allocate_lock()
        self._terminating = False
        self._eof = False
        self._bad_messages = 0
        self._stop_heartbeats = Flag()
        self._reader = protocol.FrameReader()
        self._buf = bytearray(_READ_SIZE)
        self._view = memoryview(self._buf)
        self._last_heard = time.monotonic()
        self._polled_at = 0.0

    def run(self):
        """Handshakes, then serves until done; returns the process exit code."""
        self.channel.send_frame(protocol.handshake_frame(self._worker_id, os.getpid()))
        _thread.start_new_thread(self._heartbeat, ())
        try:
            return self._serve()
        finally:
            self._stop_heartbeats.set()
            self.channel.close()

    # -- the reading thread ------------------------------------------------------------------

    def _serve(self):
        # The kernel ends a blocking read after `tick`, so the loop notices a silent node
        # without a poll(2) before every read.
        tick = min(self._timeout_s / 4, 1.0)
        self._sock.setsockopt(SOL_SOCKET, SO_RCVTIMEO, _timeval(tick))
        ticking_fast = False
        while True:
            if self.channel.broken:
                return EXIT_OK  # the node closed its end while we were writing
            if self._terminating and not self._jobs:
                return EXIT_OK
            if self._terminating and not ticking_fast:
                self._sock.setsockopt(SOL_SOCKET, SO_RCVTIMEO, _timeval(_TERMINATING_TICK_S))
                ticking_fast = True
            try:
                n = self._sock.recv_into(self._buf)
            except BlockingIOError:  # the tick passed with nothing to read
                if time.monotonic() - self._last_heard >= self._timeout_s:
                    log("nothing heard from the node for %d ms; exiting"
                        % round(self._timeout_s * 1000))
                    return EXIT_FAILED
                continue
            except OSError as e:
                log("reading from the node failed (%s); exiting" % e)
                n = 0
            if n:
                self._received(n)
                self._runner.run_ready()
            if n == 0 or self._eof:
                if self._reader.pending():
                    log("the node closed the channel in the middle of a frame; exiting")
                    return EXIT_FAILED
                return EXIT_OK

    def _received(self, n):
        self._last_heard = time.monotonic()
        if self._reader.pending():  # the end of a frame cut by the last read
            for body in self._reader.frames_of(self._view[:n]):
                self._dispatch(body)
            return
        data = bytes(self._view[:n])
        pos = 0
        # The usual read: whole jobs, each an invoke, its one chunk and its end (read_job).
        while pos < n:
            whole = read_job(data, pos, n)
            if whole is None or not self._whole_job(whole):
                break
            pos = whole[4]
        if pos < n:
            for body in self._reader.frames_of(data[pos:] if pos else data):
                self._dispatch(body)

    def _whole_job(self, whole):
        """Starts a plain synchronous job that came whole; False (nothing done) for anything
        else, which then goes message by message through _dispatch."""
        sid, event, meta_raw, data, _, parts = whole
        found = self._handlers.lookup(event)
        if found is None or found[1] or self._terminating or sid in self._jobs:
            return False
        job = Job(sid, event, None, found[0], 0, self.channel, self._job_done, parts, meta_raw,
                  data)
        self._jobs[sid] = job
        self._runner.submit(job)
        return True

    def _poll(self, job):
        """Called by an inline job between its chunks and before its reply: reads what the
        node sent meanwhile (without waiting) if the job has run long enough to have missed
        something; a cancel for the job marks it cancelled. Never raises."""
        now = time.monotonic()
        if now - job.began < _POLL_AFTER_S or now - self._polled_at < _POLL_AFTER_S \
                or self._eof:
            return
        self._polled_at = now
        try:
            n = self._sock.recv_into(self._buf, 0, MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            n = 0
        if n == 0:
            self._eof = True  # the loop leaves once this job returns
            self._runner.drop_ready()
            return
        self._received(n)

    def _dispatch(self, body):
        hot = read_hot(body)
        if hot is None:
            self._dispatch_other(body)
            return
        kind, sid, payload = hot
        if kind == _INVOKE:
            self._invoke(sid, *payload)
        else:
            self._job_message(kind, sid, payload)

    def _dispatch_other(self, body):
        """Any message but the common shapes read_hot knows: checked by protocol.parse."""
        try:
            kind, args = protocol.parse(body)
        except protocol.ProtocolError as e:
            self._bad_message(str(e))
            return
        if kind == protocol.INVOKE:
            self._invoke(*args)
        elif kind == protocol.TERMINATE:
            # No new jobs will come; the loop exits once the running ones are done.
            self._terminating = True
        elif kind != protocol.HEARTBEAT:
            self._job_message(kind, args[0], args[1] if kind == protocol.CHUNK else None)

    def _job_message(self, kind, sid, data):
        """A chunk (with its `data`), choke or cancel for job `sid`."""
        job = self._jobs.get(sid)
        if job is None:
            # A job that already ended on our side (404, cancelled, streaming handler that
            # returned early) may still get request chunks in flight: not an error.
            return
        if kind == protocol.CHUNK:
            if not job.feed(data):
                self._bad_message("chunk for job %d after the end of its request" % sid)
        elif kind == protocol.CHOKE:
            if job.end_request():
                (job.aio or self._runner).submit(job)
        elif kind == protocol.CANCEL:
            job.cancel()
            if not job.started:
                self._job_done(job)  # a plain job still waiting for its request

    def _invoke(self, sid, event, meta):
        if self._terminating:
            # The node promised none would come; answer rather than leave it hanging.
            self.channel.send([protocol.ERROR, sid, 503, "worker is terminating"])
            return
        if sid in self._jobs:
            self._bad_message("invoke for job %d, which is still running" % sid)
            return
        found = self._handlers.lookup(event)
        if found is None:
            self.channel.send([protocol.ERROR, sid, 404, "no handler for event '%s'" % event])
            return
        handler, kind, _ = found
        job = Job(sid, event, meta, handler, kind & STREAMING, self.channel, self._job_done)
        self._jobs[sid] = job
        if kind & ASYNC:
            job.aio = self._aio or self._async_runner()
            if job.streaming:
                job.aio.start_streaming(job)
        elif job.streaming:
            job.start_thread()

    def _async_runner(self):
        from .aio import AsyncRunner

        self._aio = AsyncRunner()
        return self._aio

    def _bad_message(self, reason):
        self._bad_messages += 1
        if self._bad_messages <= _BAD_MESSAGE_LOG_LIMIT:
            log("ignored a bad message from the node: %s" % reason)
            if self._bad_messages == _BAD_MESSAGE_LOG_LIMIT:
                log("not logging further bad messages")

    # -- any thread --------------------------------------------------------------------------

    def _job_done(self, job):
        with self._jobs_lock:
            if self._jobs.get(job.sid) is job:
                del self._jobs[job.sid]

    def _heartbeat(self):
        """Sends a heartbeat every period, and watches for the node hanging up meanwhile.

        It sleeps in poll(2) on the channel for a hang-up only (incoming data does not wake
        it). The reading thread sees the node's EOF itself unless it is running a handler
        inline; then this thread ends the worker, as it must leave at once when the node goes.
        """
        frame = protocol.HEARTBEAT_FRAME
        watch = select.poll()
        watch.register(self._sock.fileno(), select.POLLRDHUP)
        period_ms = max(1, round(self._heartbeat_s * 1000))
        while not self._stop_heartbeats.is_set():
            if watch.poll(period_ms):
                self._node_hung_up()
                return
            if self._stop_heartbeats.is_set() or not self.channel.send_frame(frame):
                return

    def _node_hung_up(self):
        # Give the reading thread a moment to see the EOF and leave the normal way (it also
        # tells a frame cut in two, which is exit code 1).
        if self._stop_heartbeats.wait(_HANG_UP_GRACE_S):
            return
        log("the node closed the channel while a handler was running; exiting")
        flush_and_exit(EXIT_OK)
