"""Cocaine worker SDK for Python.

An app is a module whose public functions are its events::

    import cocaine

    def echo(request):            # plain: the whole request as bytes
        return [request]          # an iterable of chunks (bytes or str), or None

    @cocaine.streaming
    def shout(request, response): # streaming: chunks as they arrive
        for chunk in request:
            response.write(chunk.upper())

    app = cocaine.App()           # or explicit registration, beside the functions

    @app.handler("echo2")
    async def echo2(request):     # async def: runs on an asyncio loop
        return [request]

The node runs it with `python3 -m cocaine.worker CODE_PATH`; see README.md. Calling apps from
Python is `cocaine.Client` (module `cocaine.client`, which needs pyzmq).
"""

from .api import App, Cancelled, Error, is_streaming, streaming

__all__ = ["App", "CallError", "Cancelled", "Client", "Error", "is_streaming", "streaming"]
__version__ = "0.2.0"


def __getattr__(name):
    # The client needs pyzmq; a worker never does, so it is imported on first use only.
    if name in ("Client", "CallError"):
        from . import client

        return getattr(client, name)
    raise AttributeError("module 'cocaine' has no attribute %r" % name)
