"""cocaine.App beside module functions: explicit names, renamed functions, http."""

import sys

import cocaine

app = cocaine.App()


@app.handler("upper")
def shout(request):                # an event as "upper" only, not as "shout"
    return [request.upper()]


@app.handler()
def named_after_itself(request):
    return [b"default name"]


@app.handler("stream", streaming=True)
def stream(request, response):
    for chunk in request:
        response.write(chunk[::-1])


def echo(request):                 # a module function: the 2012 convention still holds
    return [request]


def modules(request):
    wanted = ("asyncio", "logging", "argparse")
    return [",".join(m for m in wanted if m in sys.modules)]


def log_something(request):
    import logging

    logging.getLogger("cocaine.worker").warning("from the app: %s", request.decode())
    return None
