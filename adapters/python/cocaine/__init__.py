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

The node runs it with `python3 -m cocaine.worker CODE_PATH`; see README.md.
"""

from .api import App, Cancelled, Error, is_streaming, streaming

__all__ = ["App", "Cancelled", "Error", "is_streaming", "streaming"]
__version__ = "0.2.0"
