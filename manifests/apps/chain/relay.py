"""The second app of a publishing chain: it subscribes to the producer's pubsub and republishes
what it hears, transformed, on its own."""

import json

import cocaine


@cocaine.streaming
def relay(request, response):
    """zeromq-subscriber: the chunks are the publication's two frames, its envelope
    (`"<app>:<task> <field> <host> <time>"`) and its JSON value."""
    frames = list(request)
    envelope = frames[0].decode()
    value = json.loads(b"".join(frames[1:]))
    source, field = envelope.split(" ")[:2]
    response.write(json.dumps({"relayed": {"from": source, "field": field, "value": value}}))
    response.close()
