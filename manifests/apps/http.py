"""An http-server app (`manifests/http.json`): routes, status and headers, streaming.

Try it with curl once the node runs the manifest:
    curl -i 'http://127.0.0.1:8080/hello?name=you'              # 200, a JSON greeting
    curl -i -X DELETE http://127.0.0.1:8080/hello               # 405 with an Allow header
    curl -i -T big.file http://127.0.0.1:8080/upload            # 201, sizes as the body arrives
    curl -N http://127.0.0.1:8080/count?to=5                    # a chunked reply, a line a second
    curl -i http://127.0.0.1:8080/nowhere                       # 404: no route
"""

import json
import time

import cocaine
import cocaine.http


def hello(body):
    """A plain handler: the request from `cocaine.http.request()`, the reply a `Response`."""
    req = cocaine.http.request()
    if req.method not in ("GET", "HEAD"):
        return cocaine.http.Response(405, [("allow", "GET, HEAD")], b"GET only\n")
    greeting = {"hello": req.params.get("name", "world"), "agent": req.header("user-agent")}
    return cocaine.http.Response(200, [("content-type", "application/json")],
                                 json.dumps(greeting) + "\n")


@cocaine.streaming
def upload(request, response):
    """A streaming handler: the head first, then a line per body piece as it arrives."""
    response.head(201, [("content-type", "text/plain"), ("location", "/upload/1")])
    total = 0
    for chunk in request:
        total += len(chunk)
        response.write(b"received %d bytes (%d so far)\n" % (len(chunk), total))
    response.write(b"done: %d bytes\n" % total)
    response.close()


def count(body):
    """Chunks that leave one by one: a chunked response the client sees grow."""
    to = int(cocaine.http.request().params.get("to", "3"))
    for i in range(1, to + 1):
        yield b"%d\n" % i
        time.sleep(1)
