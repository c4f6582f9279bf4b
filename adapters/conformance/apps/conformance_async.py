"""The conformance app for the Python SDK written with `cocaine.App` and `async def`
handlers: the same events as conformance.py, run as tasks on the worker's asyncio loop."""

import asyncio

import cocaine

app = cocaine.App()


@app.handler("echo")
async def echo(request):
    return [request]


@app.handler("count")
async def count(request):
    for i in range(int(request)):
        yield str(i + 1)


@app.streaming("stream")
async def stream(request, response):
    async for chunk in request:
        response.write(chunk)


@app.handler("fail")
async def fail(request):
    raise ValueError("failed on %s" % request.decode())


@app.handler("code")
async def code(request):
    number, _, message = request.decode().partition(" ")
    raise cocaine.Error(int(number), message)


@app.streaming("slow")
async def slow(request, response):
    ms = int(await request.read())
    response.write(b"started")
    await asyncio.sleep(ms / 1000.0)  # a cancel ends the task here
    response.write(b"done")
