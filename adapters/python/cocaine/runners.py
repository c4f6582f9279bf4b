"""Where plain handlers run once their request has arrived.

- `Inline` (the node gives the worker one job at a time, or `COCAINE_INLINE=1`, which the node
  sets from the manifest's `engine.inline`): on the thread that reads the socket, right after
  it has decoded everything it read. No thread is started or woken per job; the only system
  calls of a request are the read that brought it and the write of its reply, and the jobs of
  one read are answered in one write. With several jobs at once they run one after another:
  a slow one holds up the rest, so it is an option for apps whose handlers are short.
- `Pool` (several jobs at once, or a number not known): on threads kept between jobs, started
  only when every existing one is busy and never more than the node's `concurrency`.

Streaming handlers are not run here: they read their request while it arrives, so each has a
thread of its own (Job.start_thread).
"""

import _thread
from _collections import deque
from _queue import SimpleQueue

__all__ = ["Inline", "Pool", "make_runner"]


def make_runner(concurrency, poll, channel=None, inline=False):
    """The runner for a worker the node gives `concurrency` jobs at once (None: unknown);
    `inline` (COCAINE_INLINE=1) runs jobs inline whatever the concurrency.

    `poll(job)` is what an inline job calls between its chunks and before its reply, so the
    reading thread still hears a cancel while it runs the handler. `channel`, if given, lets
    the inline runner write the replies of the jobs of one read together.
    """
    if concurrency == 1 or inline:
        return Inline(poll, channel)
    return Pool(concurrency)


class Inline:
    """Runs jobs in order on the reading thread, after the read that made them ready."""

    def __init__(self, poll, channel=None):
        self._ready = deque()
        self._poll = poll
        self._channel = channel

    def submit(self, job):
        job.started = True
        job.running = True
        self._ready.append(job)

    def run_ready(self):
        # A job that polls may make further jobs ready; they run after it, in this loop.
        ready, poll = self._ready, self._poll
        if len(ready) > 1 and self._channel is not None:
            # Several jobs came in one read (concurrency above 1): one write answers them all.
            self._channel.cork()
            try:
                while ready:
                    ready.popleft().run(poll)
            finally:
                self._channel.uncork()
            return
        while ready:
            ready.popleft().run(poll)

    def drop_ready(self):
        """The node is gone: jobs not started yet never will be."""
        self._ready.clear()


class Pool:
    """Runs jobs on up to `limit` threads (None: as many as jobs overlap), reused between jobs."""

    def __init__(self, limit):
        self._limit = limit
        self._queue = SimpleQueue()
        self._lock = _thread.allocate_lock()
        self._threads = 0
        self._idle = 0

    def submit(self, job):
        job.started = True
        job.running = True
        with self._lock:
            if self._idle:
                self._idle -= 1  # that thread will take it
                start = False
            else:
                start = self._limit is None or self._threads < self._limit
                self._threads += start
        self._queue.put(job)
        if start:
            # The worker leaves with os._exit, so this thread never holds it up, whatever a
            # handler is doing.
            _thread.start_new_thread(self._serve, ())

    def run_ready(self):
        """Nothing to do on the reading thread: pool threads take jobs as they are submitted."""

    def drop_ready(self):
        """Nothing to drop: the worker leaves without waiting for the pool's threads."""

    def _serve(self):
        while True:
            self._queue.get().run(None, self._release)

    def _release(self):
        # Called just before the job's reply ends: the node may send the next job as soon as
        # it sees that end, and this thread must already count as free for it.
        with self._lock:
            self._idle += 1
