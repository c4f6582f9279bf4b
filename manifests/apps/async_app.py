"""A Python app with explicit registration and `async def` handlers, beside a 2012-style
module function.

`fetch` waits without holding a thread (many overlap on the worker's one asyncio loop);
`chat` streams, upper-casing each request chunk as it arrives; `wait` sleeps for the
milliseconds asked and counts how often the node cancelled it (`cancelled` tells);
`hello` is a plain function, found by its name as in 2012.
"""

import asyncio
import logging

import cocaine

app = cocaine.App()
log = logging.getLogger(__name__)

_cancelled = 0


@app.handler("fetch")
async def fetch(request):
    await asyncio.sleep(0.01)  # stands for a call to another service
    return [b"fetched " + request]


@app.streaming("chat")
async def chat(request, response):
    async for chunk in request:
        response.write(chunk.upper())


@app.handler("wait")
async def wait(request):
    global _cancelled
    try:
        await asyncio.sleep(int(request or b"1000") / 1000)
    except asyncio.CancelledError:
        _cancelled += 1
        log.info("wait: cancelled")
        raise
    return [b"waited"]


@app.handler("cancelled")
async def cancelled(request):
    return [str(_cancelled)]


def hello(request):
    return ["hello, " + (request.decode() or "world")]
