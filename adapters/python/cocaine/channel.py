"""The writing half of the worker's socket, shared by the reading thread, the heartbeat thread
and the threads running handlers.

All writes go through one lock so frames never interleave. The same lock guards each job's
`ended`/`cancelled` flags, which makes "is this job still open? then send" atomic: a cancel
from the main thread and a late chunk from a handler thread cannot both get through, and a job
never gets two terminal messages.
"""

import _thread

from . import protocol
from ._log import log
from .api import Error


class Channel:
    """Sends frames on `sock`; after a write fails or `close()` is called, sends nothing."""

    def __init__(self, sock, max_message):
        self._sock = sock
        self._lock = _thread.allocate_lock()
        self._closed = False
        self.max_message = max_message
        self.broken = False
        # Job replies held by cork() until uncork(), and the thread whose replies they are.
        self._corked = None
        self._corker = None

    def send(self, message):
        """Sends a message that belongs to no job; returns whether it went out."""
        return self.send_frame(protocol.encode(message))

    def send_frame(self, frame):
        """Sends an already encoded frame that belongs to no job (heartbeats)."""
        with self._lock:
            return self._send_locked(frame)

    def reply(self, job, frame, final):
        """Sends `frame` for `job` unless the job has ended or was cancelled; `final` ends it.

        Returns False when the frame was dropped (job cancelled or ended, channel closed).
        """
        with self._lock:
            if job.ended or job.cancelled:
                return False
            if final:
                job.ended = True
            if self._corked is not None and _thread.get_ident() == self._corker:
                self._corked.append(frame)
                return not self._closed
            return self._send_locked(frame)

    def cork(self):
        """Holds the job replies this thread sends until uncork(), which writes them in one
        system call: the inline runner's jobs of one read are answered together."""
        with self._lock:
            self._corked = []
            self._corker = _thread.get_ident()

    def uncork(self):
        """Writes what cork() held."""
        with self._lock:
            frames, self._corked, self._corker = self._corked, None, None
            if frames:
                self._send_locked(b"".join(frames))

    def cancel(self, job):
        """Marks `job` cancelled unless it already ended: its chunks and ending are dropped
        from now on. A job whose handler is not running is answered
        `[6, sid, 499, "cancelled"]` at once; a running one when its handler returns
        (`settle`), so the node knows the job still holds its slot until then and can kill
        a worker whose handler does not stop.

        Returns whether the job was still open.
        """
        with self._lock:
            if job.ended or job.cancelled:
                return False
            job.cancelled = True
            if not job.running:
                self._end_cancelled_locked(job)
            return True

    def settle(self, job):
        """The job's handler has returned: a cancelled job gets its 499 now."""
        with self._lock:
            job.running = False
            if job.cancelled and not job.ended:
                self._end_cancelled_locked(job)

    def _end_cancelled_locked(self, job):
        job.ended = True
        self._send_locked(protocol.encode([protocol.ERROR, job.sid, 499, "cancelled"]))

    def close(self):
        """Stops all further writes (the worker is leaving)."""
        with self._lock:
            self._closed = True

    def chunk_frame(self, sid, data):
        """Encodes a reply chunk, refusing one the node would reject for its size.

        The node drops a worker that sends a frame over its `max-message`, so a too-large
        chunk fails the job with 413 instead.
        """
        frame = protocol.chunk_frame(sid, data)
        if len(frame) - 4 > self.max_message:
            raise Error(413, "reply chunk of %d bytes is over max-message (%d bytes)"
                        % (len(data), self.max_message))
        return frame

    def error_frame(self, sid, code, message):
        """Encodes `[6, sid, code, message]`, cutting a message too long for max-message."""
        frame = protocol.encode([protocol.ERROR, sid, code, message])
        excess = len(frame) - 4 - self.max_message
        if excess > 0:
            data = message.encode("utf-8")
            cut = max(0, len(data) - excess - 16)  # 16: room for a shorter str header
            message = data[:cut].decode("utf-8", "ignore")
            frame = protocol.encode([protocol.ERROR, sid, code, message])
        return frame

    def _send_locked(self, frame):
        if self._closed:
            return False
        try:
            self._sock.sendall(frame)
            return True
        except OSError as e:
            self._closed = True
            self.broken = True
            # The reading thread sees `broken` (or the node's EOF) when it next wakes.
            log("writing to the node failed (%s); exiting" % e)
            return False
