"""The worker's main loop: handshake, heartbeats, and turning node messages into jobs.

The main thread only reads the socket and dispatches, so it always hears a cancel or a
terminate promptly however busy the handlers are. A heartbeat thread keeps the node from
taking a long job for a hang. Job threads (job.py) write replies through the shared Channel.
"""

import os
import selectors
import threading
import time

from . import protocol
from ._log import log
from .app import find_handler
from .channel import Channel
from .job import Job

# Exit codes, for the node's log: 0 the node let us go (EOF, terminate); 1 otherwise.
EXIT_OK = 0
EXIT_FAILED = 1

_READ_SIZE = 256 * 1024

# After this many malformed messages the worker stops logging them (the node would be broken).
_BAD_MESSAGE_LOG_LIMIT = 10


class Worker:
    """Serves one node connection until the node lets it go or disappears."""

    def __init__(self, sock, app, worker_id, heartbeat_s, timeout_s,
                 max_message=protocol.DEFAULT_MAX_MESSAGE):
        self._sock = sock
        self._app = app
        self._worker_id = worker_id
        self._heartbeat_s = heartbeat_s
        self._timeout_s = timeout_s
        self.channel = Channel(sock, max_message, self._wake)
        # sid -> Job for every job the node considers running. The main thread adds and looks
        # up; job threads remove themselves when their handler is done.
        self._jobs = {}
        self._jobs_lock = threading.Lock()
        self._terminating = False
        self._bad_messages = 0
        self._stop_heartbeats = threading.Event()
        # Job threads wake the main loop through this pipe (last job done while terminating,
        # or a failed write) without it having to poll.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def run(self):
        """Handshakes, then serves until done; returns the process exit code."""
        self.channel.send([protocol.HANDSHAKE, self._worker_id, protocol.PROTOCOL_VERSION,
                           os.getpid()])
        heartbeats = threading.Thread(target=self._heartbeat, name="cocaine-heartbeat")
        heartbeats.daemon = True
        heartbeats.start()
        try:
            return self._serve()
        finally:
            self._stop_heartbeats.set()
            self.channel.close()

    # -- main thread -------------------------------------------------------------------------

    def _serve(self):
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        reader = protocol.FrameReader()
        last_heard = time.monotonic()
        while True:
            if self.channel.broken:
                return EXIT_OK  # the node closed its end while we were writing
            if self._terminating and not self._running():
                return EXIT_OK
            wait = last_heard + self._timeout_s - time.monotonic()
            if wait <= 0:
                log("nothing heard from the node for %d ms; exiting"
                    % round(self._timeout_s * 1000))
                return EXIT_FAILED
            for key, _ in selector.select(wait):
                if key.fileobj is not self._sock:
                    self._drain_wake()
                    continue
                try:
                    data = self._sock.recv(_READ_SIZE)
                except OSError as e:
                    log("reading from the node failed (%s); exiting" % e)
                    data = b""
                if not data:
                    if reader.pending():
                        log("the node closed the channel in the middle of a frame; exiting")
                        return EXIT_FAILED
                    return EXIT_OK
                last_heard = time.monotonic()
                reader.feed(data)
                for body in reader.frames():
                    self._dispatch(body)

    def _dispatch(self, body):
        try:
            kind, args = protocol.parse(body)
        except protocol.ProtocolError as e:
            self._bad_message(str(e))
            return
        if kind == protocol.HEARTBEAT:
            return
        if kind == protocol.TERMINATE:
            # No new jobs will come; the loop exits once the running ones are done.
            self._terminating = True
            return
        if kind == protocol.INVOKE:
            self._invoke(*args)
            return
        sid = args[0]
        job = self._job(sid)
        if job is None:
            # A job that already ended on our side (404, cancelled, streaming handler that
            # returned early) may still get request chunks in flight: not an error.
            return
        if kind == protocol.CHUNK:
            if not job.feed(args[1]):
                self._bad_message("chunk for job %d after the end of its request" % sid)
        elif kind == protocol.CHOKE:
            job.end_request()
        elif kind == protocol.CANCEL:
            job.cancel()
            if not job.started:
                self._job_done(job)  # a plain job still waiting for its request

    def _invoke(self, sid, event, meta):
        if self._terminating:
            # The node promised none would come; answer rather than leave it hanging.
            self.channel.send([protocol.ERROR, sid, 503, "worker is terminating"])
            return
        if self._job(sid) is not None:
            self._bad_message("invoke for job %d, which is still running" % sid)
            return
        handler = find_handler(self._app, event)
        if handler is None:
            self.channel.send([protocol.ERROR, sid, 404, "no handler for event '%s'" % event])
            return
        job = Job(sid, event, meta, handler, self.channel, self._job_done)
        with self._jobs_lock:
            self._jobs[sid] = job
        if job.streaming:
            job.start()

    def _bad_message(self, reason):
        self._bad_messages += 1
        if self._bad_messages <= _BAD_MESSAGE_LOG_LIMIT:
            log("ignored a bad message from the node: %s" % reason)
            if self._bad_messages == _BAD_MESSAGE_LOG_LIMIT:
                log("not logging further bad messages")

    def _drain_wake(self):
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    # -- any thread --------------------------------------------------------------------------

    def _job(self, sid):
        with self._jobs_lock:
            return self._jobs.get(sid)

    def _running(self):
        with self._jobs_lock:
            return len(self._jobs)

    def _job_done(self, job):
        with self._jobs_lock:
            if self._jobs.get(job.sid) is job:
                del self._jobs[job.sid]
            last = not self._jobs
        if last and self._terminating:
            self._wake()

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full, so the loop is waking up anyway

    def _heartbeat(self):
        frame = protocol.encode([protocol.HEARTBEAT])
        while not self._stop_heartbeats.wait(self._heartbeat_s):
            if not self.channel.send_frame(frame):
                return
