"""A raw-server app: one handler per task, each named after its task.

Try it with plain tools (the node must run `manifests/raw-server.json`):
    printf 'hello\nworld\n' | nc -q 1 127.0.0.1 9300     # line: each line reversed
    python3 -c 'import socket,struct; s=socket.create_connection(("127.0.0.1",9301)); \
        s.sendall(struct.pack(">I",5)+b"hello"); print(s.recv(64))'   # length: b"\x00\x00\x00\x06\x00HELLO"
    printf 'some text' | nc -N 127.0.0.1 9302             # stream: word and byte counts as it reads
"""

import cocaine


def lines(request):
    """`line` framing: the line reversed."""
    return [request[::-1]]


def frames(request):
    """`length` framing: the frame upper-cased."""
    return [request.upper()]


@cocaine.streaming
def stream(request, response):
    """`stream` framing: counts what the connection sends; the counts come once it ends."""
    size = 0
    words = 0
    for chunk in request:
        size += len(chunk)
        words += len(chunk.split())
    response.write(b"%d bytes, %d words\n" % (size, words))
    response.close()
