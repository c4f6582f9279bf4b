"""http-server (docs/http.md) with real clients: Python's http.client, curl and raw sockets.
Keep-alive, pipelining, chunked bodies both ways, streaming replies, status and headers from
the handler, every error status, a slow client, a client that leaves, HTTP/1.0, a redeploy
that keeps connections open."""

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port, python_app
from control import cnode, deploy, versioned_app  # noqa: F401 - cnode is a fixture

TIMEOUT = 15.0

ROUTES = {"/echo": "echo", "/info": "info", "/created": "created", "/chunks": "chunks",
          "/stream": "stream", "/crash": "crash", "/fail": "fail", "/sleep": "sleep",
          "/missing": "nothere"}


def start_web(node):
    """A node with the web app: `api` (routed), `web` (no routes: every request is the event
    "web"), `slow` (a 400 ms job timeout); and the `tight` app (one worker, one queued job)."""
    ports = {name: free_port() for name in ("api", "web", "slow", "tight")}

    def task(name, **extra):
        t = {"type": "http-server", "endpoint": "tcp://127.0.0.1:%d" % ports[name]}
        t.update(extra)
        return t

    tasks = {
        "api": task("api", routes=ROUTES, **{"max-body": 4096, "max-header": 2048,
                                            "header-timeout": 1000}),
        "web": task("web"),
        "slow": task("slow", routes={"/": "sleep"}, timeout=400),
    }
    engine = {"pool-limit": 2, "concurrency": 2, "queue-limit": 50}
    tight_engine = {"pool-limit": 1, "concurrency": 1, "queue-limit": 1}
    apps = {
        "web": python_app("web.py", tasks, engine=engine),
        "tight": python_app("web.py", {"tight": task("tight", routes={"/": "sleep"})},
                            engine=tight_engine),
    }
    return node(apps), ports


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_to_eof(s):
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def parse_responses(data):
    """Every response in `data`: [(status, {name: value}, body)], bodies by Content-Length,
    chunked, or to the end."""
    out = []
    while data:
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep, "a cut head: %r" % head
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            size = int(headers["content-length"])
            body, data = data[:size], data[size:]
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line, 16)
                body += data[:size]
                data = data[size + 2:]
                if size == 0:
                    break
        else:
            body, data = data, b""
        out.append((status, headers, body))
    return out


def exchange(port, raw):
    """Sends `raw` on a new connection, reads until the node closes it, parses the replies."""
    s = connect(port)
    try:
        s.sendall(raw)
        return parse_responses(read_to_eof(s))
    finally:
        s.close()


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def test_keep_alive_meta_and_default_event(node):
    n, ports = start_web(node)
    c = http.client.HTTPConnection("127.0.0.1", ports["api"], timeout=TIMEOUT)
    c.connect()
    sock = c.sock
    for i in range(5):
        c.request("POST", "/echo", body=b"hello %d" % i)
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"hello %d" % i)
        assert r.getheader("content-length") == str(len(b"hello %d" % i))
    c.request("GET", "/info/x?a=1&b=%20", headers={"X-One": "1", "X-Two": "zwei"})
    r = c.getresponse()
    info = json.loads(r.read())
    assert c.sock is sock, "the connection was kept alive"
    c.close()
    assert info["method"] == "GET" and info["path"] == "/info/x"
    assert info["query"] == "a=1&b=%20" and info["version"] == "1.1"
    assert ["x-one", "1"] in info["headers"] and ["x-two", "zwei"] in info["headers"]
    # No routes: every request is the event named after the task.
    assert request(ports["web"], "POST", "/anything/at/all", b"x")[::2] == (200, b"default:x")


def test_pipelining_answers_in_request_order(node):
    n, ports = start_web(node)
    # The first request is the slowest: the later replies wait for it.
    raw = (b"GET /sleep?0.5 HTTP/1.1\r\nHost: a\r\n\r\n"
           b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\none"
           b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\ntwo"
           b"GET /chunks HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    replies = exchange(ports["api"], raw)
    assert [(s, b) for s, _, b in replies] == [
        (200, b"slept"), (200, b"one"), (200, b"two"), (200, b"one,two,three")]
    # A reply that ended while it waited its turn has its length.
    assert replies[3][1]["content-length"] == "13"


def test_a_long_pipeline_is_read_as_replies_make_room(node):
    """Thousands of pipelined requests in one stream: the node stops reading while its
    pipeline is full and resumes when a reply makes room (reading what waited in the socket,
    since no new readiness edge comes for it). Every request is answered, once, in order."""
    n, ports = start_web(node)
    count = 3000
    raw = b"".join(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%d"
                   % (len(b"%d" % i), i) for i in range(count))
    raw += b"GET /chunks HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    s = connect(ports["api"])
    # The node reads at the pace it answers, so the sender must not block the reader.
    sender = threading.Thread(target=s.sendall, args=(raw,), daemon=True)
    sender.start()
    try:
        replies = parse_responses(read_to_eof(s))
    finally:
        sender.join(TIMEOUT)
        s.close()
    assert len(replies) == count + 1
    assert [(st, b) for st, _, b in replies[:count]] == [(200, b"%d" % i) for i in range(count)]
    assert replies[count][::2] == (200, b"one,two,three")


def test_chunked_request_and_streaming_reply_as_they_come(node):
    n, ports = start_web(node)
    # http.client sends a chunked body from an iterator.
    c = http.client.HTTPConnection("127.0.0.1", ports["api"], timeout=TIMEOUT)
    c.request("POST", "/stream", body=iter([b"a", b"bb", b"ccc"]), encode_chunked=True)
    r = c.getresponse()
    assert r.status == 200 and r.getheader("x-streaming") == "yes"
    assert r.getheader("transfer-encoding") == "chunked"
    assert r.read() == b"got:a\ngot:bb\ngot:ccc\n"
    c.close()
    # The pieces reach the handler, and their echoes the client, before the body ends (the
    # response starts with the reply's second chunk: then its framing is known).
    s = connect(ports["api"])
    s.sendall(b"POST /stream HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    got = b""
    for piece in (b"first", b"second", b"third"):
        s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        while piece != b"first" and b"got:" + piece + b"\n" not in got:
            chunk = s.recv(65536)
            assert chunk, "closed after %r" % got
            got += chunk
    s.sendall(b"0\r\n\r\n")
    while not got.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        assert chunk, "closed after %r" % got
        got += chunk
    s.close()
    assert parse_responses(got)[0][2] == b"got:first\ngot:second\ngot:third\n"


def test_status_and_headers_from_the_handler(node):
    n, ports = start_web(node)
    status, headers, body = request(ports["api"], "GET", "/created")
    assert (status, body) == (201, b"made")
    assert headers["x-made-by"] == "web.py" and headers["content-type"] == "text/plain"
    # Several chunks: chunked.
    status, headers, body = request(ports["api"], "GET", "/chunks")
    assert (status, body) == (200, b"one,two,three")
    assert headers["transfer-encoding"] == "chunked"


def test_http_1_0_closes_after_the_reply(node):
    n, ports = start_web(node)
    replies = exchange(ports["api"], b"POST /echo HTTP/1.0\r\nContent-Length: 4\r\n\r\nold!")
    assert [(s, b) for s, _, b in replies] == [(200, b"old!")]
    # A several-chunk reply to HTTP/1.0 has no length: the close ends it.
    replies = exchange(ports["api"], b"GET /chunks HTTP/1.0\r\n\r\n")
    assert replies[0][0] == 200 and replies[0][2] == b"one,two,three"
    assert "transfer-encoding" not in replies[0][1]


def test_errors_become_statuses(node):
    n, ports = start_web(node)
    api = ports["api"]
    assert exchange(api, b"NOT HTTP AT ALL\r\n\r\n")[0][0] == 400
    assert exchange(api, b"GET / HTTP/1.1\r\n\r\n")[0][0] == 400  # no Host
    assert request(api, "GET", "/nowhere")[0] == 404  # no route
    assert request(api, "GET", "/missing")[0] == 404  # no handler for the event
    assert request(api, "POST", "/echo", b"x" * 5000)[0] == 413
    assert request(api, "GET", "/echo", headers={"x-big": "y" * 3000})[0] == 431
    assert request(api, "GET", "/crash")[0] == 500
    assert request(api, "GET", "/fail")[0] == 502
    assert request(ports["slow"], "GET", "/?3")[0] == 504
    # The node still answers after each.
    assert request(api, "POST", "/echo", b"still")[::2] == (200, b"still")


def test_queue_full_is_503(node):
    n, ports = start_web(node)
    statuses = []

    def call():
        statuses.append(request(ports["tight"], "GET", "/?1.5")[0])

    # One worker runs a job, one waits in the queue: the others are refused.
    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert sorted(statuses)[-1] == 503 and statuses.count(200) >= 1, statuses


def test_slow_client_is_closed_after_header_timeout(node):
    n, ports = start_web(node)
    s = connect(ports["api"])
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Slow")
    started = time.monotonic()
    replies = parse_responses(read_to_eof(s))
    s.close()
    assert [r[0] for r in replies] == [408]
    assert time.monotonic() - started < TIMEOUT
    # An idle keep-alive connection closes silently.
    s = connect(ports["api"])
    assert read_to_eof(s) == b""
    s.close()


def test_client_leaving_mid_request_cancels_its_job(node):
    n, ports = start_web(node)
    mark = len(n.lines)
    # The job runs (its echoes are back) when the client leaves.
    s = connect(ports["api"])
    s.sendall(b"POST /stream HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nfirst\r\n6\r\nsecond\r\n")
    got = b""
    while b"got:second" not in got:
        chunk = s.recv(65536)
        assert chunk, "closed after %r" % got
        got += chunk
    s.close()
    n.wait_for_log(r"http connection .*: request 0 cancelled", 10.0, start=mark)
    # A body cut short cancels too; the node goes on.
    s = connect(ports["api"])
    s.sendall(b"POST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly part")
    s.close()
    assert request(ports["api"], "POST", "/echo", b"after")[::2] == (200, b"after")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by scripts/e2e")
def test_curl(node):
    n, ports = start_web(node)
    base = "http://127.0.0.1:%d" % ports["api"]

    def curl(*args, data=None):
        out = subprocess.run(["curl", "-sS", "--max-time", "10", *args], input=data,
                             capture_output=True, timeout=TIMEOUT, check=True)
        return out.stdout

    assert curl("--data-binary", "hello", base + "/echo") == b"hello"
    # Two URLs, one connection (curl reuses it; the node keeps it alive).
    two = curl("-v", base + "/echo", base + "/chunks")
    assert two.endswith(b"one,two,three")
    # Chunked upload from stdin, chunked streaming reply.
    out = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@-", base + "/stream",
               data=b"piped")
    assert out == b"got:piped\n"
    assert curl("--http1.0", "--data-binary", "ten", base + "/echo") == b"ten"
    head = curl("-i", base + "/created")
    assert head.startswith(b"HTTP/1.1 201") and b"x-made-by: web.py" in head.lower()
    assert curl("-o", "/dev/null", "-w", "%{http_code}", base + "/fail") == b"502"


def test_redeploy_keeps_connections_open(cnode):
    n = cnode()
    port = free_port()
    tasks = {"echo": {"type": "http-server", "endpoint": "tcp://127.0.0.1:%d" % port}}
    deploy(n, "web", versioned_app(1, tasks, manifest_version=1))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    c.request("POST", "/", body=b"a")
    assert c.getresponse().read() == b"v1:a"
    sock = c.sock
    deploy(n, "web", versioned_app(2, tasks, manifest_version=2))
    c.request("POST", "/", body=b"b")
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"v2:b")
    assert c.sock is sock, "the connection stayed open over the redeploy"
    c.close()
