"""An app with `async def` handlers, registered on a cocaine.App and as module functions."""

import asyncio
import sys

import cocaine

app = cocaine.App()

# Set by `hold`, released by `release`: shows that tasks overlap on the one loop.
_gate = None


def _get_gate():
    global _gate
    if _gate is None:
        _gate = asyncio.Event()
    return _gate


@app.handler("echo")
async def echo(request):
    await asyncio.sleep(0)
    return [request]


@app.handler("hold")
async def hold(request):
    await _get_gate().wait()
    return [b"held " + request]


@app.handler("release")
async def release(request):
    _get_gate().set()
    return b"released"


@app.handler("sleep")
async def sleep_forever(request):
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        sys.stderr.write("sleep: cancelled\n")
        raise
    return [b"woke"]


@app.handler("fail")
async def fail(request):
    await asyncio.sleep(0)
    raise ValueError("async boom")


@app.handler("forbidden")
async def forbidden(request):
    raise cocaine.Error(403, "go away")


@app.handler("count")
async def count(request):          # an async generator: chunks as they are yielded
    for i in range(int(request or b"3")):
        await asyncio.sleep(0)
        yield str(i + 1)


@app.streaming("shout")
async def shout(request, response):
    async for chunk in request:
        response.write(chunk.upper())


@app.handler("collect", streaming=True)
async def collect(request, response):
    response.write(b"got %d bytes" % len(await request.read()))


@app.streaming("stream_wait")
async def stream_wait(request, response):
    try:
        async for chunk in request:
            response.write(chunk)
    except cocaine.Cancelled:
        sys.stderr.write("stream_wait: cancelled\n")
        raise


def plain(request):                # the 2012 convention, beside the App
    return [b"plain " + request]


def modules(request):
    wanted = ("asyncio", "logging", "argparse")
    return [",".join(m for m in wanted if m in sys.modules)]
