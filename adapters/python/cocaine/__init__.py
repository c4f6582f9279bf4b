"""Cocaine worker SDK for Python.

An app is a module whose public functions are its events::

    import cocaine

    def echo(request):            # plain: the whole request as bytes
        return [request]          # an iterable of chunks (bytes or str), or None

    @cocaine.streaming
    def shout(request, response): # streaming: chunks as they arrive
        for chunk in request:
            response.write(chunk.upper())

The node runs it with `python3 -m cocaine.worker CODE_PATH`; see README.md.
"""

from .api import Cancelled, Error, is_streaming, streaming

__all__ = ["Cancelled", "Error", "is_streaming", "streaming"]
__version__ = "0.1.0"
