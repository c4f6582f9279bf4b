"""`async def` handlers: one asyncio loop on a thread of its own, each job a task on it.

Imported only when the app has an `async def` handler (asyncio is slow to import). The loop
thread starts with the runner, before the worker connects. The reading thread hands jobs
over with `call_soon_threadsafe`: a plain job once its request has ended, a streaming one at
its start (its request chunks follow through an `Inbox`). The node gives the worker at most
its `concurrency` jobs at once, so at most that many tasks run.

A cancel from the node (`[7, sid]`) cancels the job's task: `asyncio.CancelledError` at its
current `await`; once the task is done the node gets `[6, sid, 499, "cancelled"]`. Any other
exception fails the job with 502, as for a synchronous handler.
"""

import _thread
import asyncio
import time
from collections import deque  # loaded by asyncio already
from contextvars import ContextVar

from . import job as _job
from .api import Cancelled

__all__ = ["AsyncRunner", "AsyncRequest"]

_job.task_job = ContextVar("cocaine_job", default=None)


class AsyncRunner:
    """Runs async jobs as tasks on its loop's thread."""

    def __init__(self):
        self._loop = asyncio.new_event_loop()
        # The worker leaves with os._exit, so this thread never holds it up.
        _thread.start_new_thread(self._run, ())

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    # -- the reading thread ------------------------------------------------------------------

    def submit(self, job):
        """Starts `job`'s handler as a task (a plain job whose request has ended)."""
        job.started = True
        job.running = True
        self._loop.call_soon_threadsafe(self._start, job)

    def start_streaming(self, job):
        """Starts a streaming job at its invoke; its request chunks go through an Inbox."""
        job.queue = Inbox(self._loop)
        self.submit(job)

    def cancel(self, job):
        self._loop.call_soon_threadsafe(self._cancel, job)

    def run_ready(self):
        """Nothing to run on the reading thread."""

    def drop_ready(self):
        """Nothing to drop: the worker leaves without waiting for the loop."""

    # -- the loop's thread -------------------------------------------------------------------

    def _start(self, job):
        job.task = self._loop.create_task(run_job(job))

    @staticmethod
    def _cancel(job):
        # The job's start comes before its cancel (both in order through
        # call_soon_threadsafe). A task cancelled before its first step would never run
        # run_job, and the job would never end: such a task sees `job.cancelled` instead.
        if job.task is not None and job.task_began:
            job.task.cancel()


async def run_job(job):
    """Runs the handler of `job` and ends the job, as Job.run does for a synchronous one."""
    job.began = time.monotonic()
    job.task_began = True
    _job.task_job.set(job)
    failure = None
    try:
        if job.cancelled:
            pass  # cancelled between the hand-over and now: 499 below, the handler never runs
        elif job.streaming:
            await job.handler(AsyncRequest(job), _job.Response(job))
        else:
            await _run_plain(job)
    except asyncio.CancelledError as e:
        if not job.cancelled:  # the handler's own doing, not the node's
            failure = e
    except BaseException as e:  # SystemExit from a handler must not end the worker either
        failure = e
    try:
        if failure is None:
            job._finish()
        else:
            job._fail(failure)
    finally:
        job._channel.settle(job)
        job._on_done(job)


async def _run_plain(job):
    result = job.handler(job.take_request())
    if hasattr(result, "__await__"):
        result = await result
    if hasattr(result, "__anext__"):  # an async generator: chunks go out as they are yielded
        try:
            async for chunk in result:
                if not job.write(chunk):
                    break  # cancelled
        finally:
            await result.aclose()
        return
    job.emit(result, None)


class Inbox:
    """A streaming async job's request chunks: put by the reading thread, awaited by the task."""

    def __init__(self, loop):
        self._loop = loop
        self._items = deque()
        self._waiter = None

    def put(self, item):
        self._loop.call_soon_threadsafe(self._put, item)

    def _put(self, item):
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self):
        while not self._items:
            self._waiter = self._loop.create_future()
            await self._waiter
        return self._items.popleft()


class AsyncRequest:
    """The request of an async streaming job: `async for chunk in request` yields its chunks
    (bytes) as they arrive, ends at the end of the request and raises `cocaine.Cancelled`
    once the job is cancelled; `await request.read()` gives the rest in one piece. `event`
    and `meta` are as for a synchronous streaming handler."""

    def __init__(self, job):
        self._job = job
        self._done = False
        self.sid = job.sid
        self.event = job.event
        self.meta = job.meta

    def __aiter__(self) -> "AsyncRequest":
        return self

    async def __anext__(self) -> bytes:
        if self._job.cancelled:
            raise Cancelled("job %d was cancelled" % self.sid)
        if self._done:
            raise StopAsyncIteration
        item = await self._job.queue.get()
        if item is _job._CANCELLED:
            raise Cancelled("job %d was cancelled" % self.sid)
        if item is _job._END:
            self._done = True
            raise StopAsyncIteration
        return item

    async def read(self) -> bytes:
        """The rest of the request as one bytes value (waits for its end)."""
        return b"".join([chunk async for chunk in self])
