"""Streaming both ways: the request arrives chunk by chunk and the reply leaves the same way.

`stream` echoes each chunk as soon as it arrives; `total` counts bytes until the request
ends; `slow` sends a chunk a second, for n seconds, to show a reply starting before it ends.
"""

import time

import cocaine


@cocaine.streaming
def stream(request, response):
    for chunk in request:
        response.write(chunk)


@cocaine.streaming
def total(request, response):
    response.write(str(sum(len(chunk) for chunk in request)))


def slow(request):
    for i in range(int(request or b"3")):
        yield "tick %d\n" % i
        time.sleep(1)
