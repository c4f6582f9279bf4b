"""The first app of a publishing chain: what is pushed to its sinks is published as a result."""

import json


def push(request):
    """zeromq-sink: each message's frames, joined, as `{"word": ..., "length": ...}`."""
    text = request.decode("utf-8", "replace")
    return [json.dumps({"word": text, "length": len(text)})]


def invoke(request):
    """native-sink: the request, upper-cased, published as `result`."""
    return [request.upper()]
