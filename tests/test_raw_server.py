"""raw-server (docs/protocol.md §5) with plain Python sockets: each framing, many connections,
input trickled byte by byte, clients that leave mid-request, limits, malformed frames; the
node keeps serving after each."""

import json
import socket
import struct
import threading
import time

from conftest import REPO, free_port, python_app
from control import cnode, deploy, versioned_app  # noqa: F401 - cnode is a fixture

TIMEOUT = 10.0


def start_raw(node, engine=None, **task_extra):
    ports = {"line": free_port(), "length": free_port(), "stream": free_port()}
    tasks = {}
    for framing, port in ports.items():
        task = {"type": "raw-server", "endpoint": "tcp://127.0.0.1:%d" % port, "framing": framing}
        task.update(task_extra.get(framing, {}))
        tasks[framing] = task
    engine = engine or {"pool-limit": 4, "concurrency": 8, "queue-limit": 500}
    n = node({"raw": python_app("raw.py", tasks, engine=engine)})
    return n, ports


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_lines(s, count):
    """`count` lines (without `\\n`), waiting at most TIMEOUT in all."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while data.count(b"\n") < count:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        assert chunk, "closed after %r" % data
        data += chunk
    return data.split(b"\n")[:count]


def read_to_eof(s):
    """Everything until the node closes the connection."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def read_exact(s, size):
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while len(data) < size:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(size - len(data))
        assert chunk, "closed after %r" % data
        data += chunk
    return data


def frame(body):
    return struct.pack(">I", len(body)) + body


def read_frame(s):
    (size,) = struct.unpack(">I", read_exact(s, 4))
    payload = read_exact(s, size)
    return payload[0], payload[1:]


def line_call(port, text):
    with connect(port) as s:
        s.sendall(text + b"\n")
        return read_lines(s, 1)[0]


def test_line_framing(node):
    _, ports = start_raw(node)
    with connect(ports["line"]) as s:
        s.sendall(b"hello\r\n\nworld\n")
        assert read_lines(s, 3) == [b"hello", b"", b"world"]
        # A slow request's reply comes first even though a later one ends before it.
        s.sendall(b"sleep 0.5\nquick\nraise\nafter\n")
        got = read_lines(s, 4)
        assert got[:2] == [b"sleep 0.5", b"quick"], got
        assert got[2].startswith(b"ERROR 502 ") and b"asked to fail" in got[2], got
        assert got[3] == b"after"


def test_length_framing(node):
    _, ports = start_raw(node)
    with connect(ports["length"]) as s:
        s.sendall(frame(b"hello") + frame(b"") + frame(b"raise") + frame(b"x" * 100000))
        assert read_frame(s) == (0, b"hello")
        assert read_frame(s) == (0, b"")
        status, text = read_frame(s)
        assert status == 1 and text.startswith(b"502 "), text
        assert read_frame(s) == (0, b"x" * 100000)


def test_stream_framing(node):
    _, ports = start_raw(node)
    with connect(ports["stream"]) as s:
        # Reply chunks come back while the request still streams in.
        s.sendall(b"first")
        assert read_exact(s, 5) == b"first"
        s.sendall(b" second")
        assert read_exact(s, 7) == b" second"
        s.shutdown(socket.SHUT_WR)
        assert read_to_eof(s) == b"|end"


def test_hundred_concurrent_connections(node):
    _, ports = start_raw(node)
    count = 100
    socks = [connect(ports["line"]) for _ in range(count)]
    try:
        for i, s in enumerate(socks):
            s.sendall(b"conn %d a\nconn %d b\n" % (i, i))
        for i, s in enumerate(socks):
            assert read_lines(s, 2) == [b"conn %d a" % i, b"conn %d b" % i]
    finally:
        for s in socks:
            s.close()
    # The same over length framing, from threads at once.
    errors = []

    def client(i):
        try:
            with connect(ports["length"]) as s:
                s.sendall(frame(b"client %d" % i))
                assert read_frame(s) == (0, b"client %d" % i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not errors, errors[:5]


def test_input_trickled_byte_by_byte(node):
    _, ports = start_raw(node)
    with connect(ports["line"]) as s:
        for byte in b"trickled\r\nagain\n":
            s.sendall(bytes([byte]))
            time.sleep(0.002)  # shapes the input into separate segments; nothing waits on it
        assert read_lines(s, 2) == [b"trickled", b"again"]
    with connect(ports["length"]) as s:
        for byte in frame(b"in pieces"):
            s.sendall(bytes([byte]))
            time.sleep(0.002)
        assert read_frame(s) == (0, b"in pieces")


def test_client_leaving_mid_request(node):
    n, ports = start_raw(node)
    mark = len(n.lines)
    other = connect(ports["line"])
    try:
        # A slow request and half a line, then the client leaves.
        leaving = connect(ports["line"])
        leaving.sendall(b"sleep 1\nhalf a li")
        leaving.close()
        # A reset (RST) mid-request, on a stream connection.
        resetting = connect(ports["stream"])
        resetting.sendall(b"partial")
        assert read_exact(resetting, 7) == b"partial"
        resetting.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        resetting.close()
        # Another client is served meanwhile, and afterwards.
        other.sendall(b"still here\n")
        assert read_lines(other, 1) == [b"still here"]
        # Both leavers' jobs are cancelled.
        seen = n.wait_for_log(r"raw connection c\d+ .*: 1 job\(s\) cancelled", TIMEOUT, mark)
        index = n.lines.index(seen)
        n.wait_for_log(r"raw connection c\d+ .*: 1 job\(s\) cancelled", TIMEOUT, index + 1)
    finally:
        other.close()
    assert line_call(ports["line"], b"after") == b"after"
    assert n.proc.poll() is None


def test_line_over_the_limit(node):
    n, ports = start_raw(node, line={"max-line": 1024})
    with connect(ports["line"]) as s:
        s.sendall(b"fine\n" + b"x" * 5000 + b"\nnever\n")
        data = read_to_eof(s)
        lines = data.split(b"\n")
        assert lines[0] == b"fine", data
        assert lines[1].startswith(b"ERROR 413 "), data
        assert lines[2:] == [b""], data
    # Without an end of line at all: the limit is noticed before the line ends.
    with connect(ports["line"]) as s:
        s.sendall(b"y" * (2 << 20))
        assert read_to_eof(s).startswith(b"ERROR 413 ")
    assert line_call(ports["line"], b"next") == b"next"
    assert n.proc.poll() is None


def test_malformed_length_frames(node):
    n, ports = start_raw(node, length={"max-message": 4096})
    # A length over the limit: 413, then the close.
    with connect(ports["length"]) as s:
        s.sendall(frame(b"ok") + struct.pack(">I", 0xFFFFFFFF) + b"junk")
        assert read_frame(s) == (0, b"ok")
        status, text = read_frame(s)
        assert status == 1 and text.startswith(b"413 "), text
        assert read_to_eof(s) == b""
    # A truncated frame, then the client leaves; and a prefix cut short.
    for junk in (struct.pack(">I", 100) + b"short", b"\x00\x00"):
        with connect(ports["length"]) as s:
            s.sendall(junk)
    with connect(ports["length"]) as s:
        s.sendall(frame(b"still fine"))
        assert read_frame(s) == (0, b"still fine")
    assert n.proc.poll() is None


def test_example_manifest_runs_as_is(node):
    path = REPO / "manifests" / "raw-server.json"
    manifest = json.loads(path.read_text())
    manifest["args"] = "local://%s" % (REPO / "manifests" / "apps" / "raw.py")
    ports = {}
    for name, task in manifest["tasks"].items():
        ports[name] = free_port()
        host = task["endpoint"].rsplit(":", 1)[0]
        task["endpoint"] = "%s:%d" % (host, ports[name])
    assert manifest["tasks"]["lines"]["endpoint"].startswith("tcp://lo:"), "interface name kept"
    node({"raw-server": manifest})
    assert line_call(ports["lines"], b"abc") == b"cba"
    with connect(ports["frames"]) as s:
        s.sendall(frame(b"hello"))
        assert read_frame(s) == (0, b"HELLO")
    with connect(ports["stream"]) as s:
        s.sendall(b"two words")
        s.shutdown(socket.SHUT_WR)
        assert read_to_eof(s) == b"9 bytes, 2 words\n"


def test_redeploy_keeps_the_listener_and_open_connections(cnode):
    n = cnode()
    port = free_port()
    tasks = {"echo": {"type": "raw-server", "endpoint": "tcp://127.0.0.1:%d" % port,
                      "framing": "line"}}
    deploy(n, "rawrd", versioned_app(1, tasks, manifest_version=1))
    with connect(port) as s:
        s.sendall(b"before\n")
        assert read_lines(s, 1) == [b"v1:before"]
        reply = deploy(n, "rawrd", versioned_app(2, tasks, manifest_version=2))
        assert reply["redeployed"] is True, reply
        # The connection opened before the redeploy goes on, served by the new version.
        s.sendall(b"after\n")
        assert read_lines(s, 1) == [b"v2:after"]
    assert line_call(port, b"new") == b"v2:new"
