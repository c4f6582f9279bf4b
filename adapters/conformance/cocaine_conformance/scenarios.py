"""The scenario table: what every worker SDK must do on the worker channel.

Each scenario starts the worker under test through `start(env=...)` (a FakeNode), drives it
as a node would and raises `Failure` when the worker strays from the protocol. The app the
worker runs must expose the events of the conformance contract (docs/sdk.md):

    echo    plain      the request as one chunk
    count   plain      request "n": n chunks "1" .. "n"
    stream  streaming  every request chunk written back as soon as it arrives
    fail    plain      raises an error whose text holds the request (502)
    code    plain      request "418 teapot": fails with code 418 and message "teapot"
    slow    streaming  writes "started", waits the request's number of milliseconds (stopping
                       early when cancelled), then writes "done"

A scenario with `needs` checks an ability an SDK may lack (its runner skips it when told so).
"""

import time

from .fakenode import (
    CANCEL, CHOKE, CHUNK, ERROR, HANDSHAKE, HEARTBEAT, INVOKE, TERMINATE,
    Failure, body_of, error_of, expect, frame,
)


class Scenario:
    def __init__(self, fn, needs=()):
        self.fn = fn
        self.name = fn.__name__
        self.doc = " ".join((fn.__doc__ or "").split())
        self.needs = set(needs)


SCENARIOS = []


def scenario(*needs):
    def register(fn):
        SCENARIOS.append(Scenario(fn, needs))
        return fn
    return register


def still_serving(node, sid=1000):
    """The worker answers a plain call: it survived what came before."""
    got = body_of(node.call(sid, "echo", b"still here"))
    expect(got == b"still here", "echo after the scenario replied %r" % (got,))


def wait_started(node, sid):
    """Waits for a `slow` job's "started" chunk."""
    message = node.recv()
    expect(message == [CHUNK, sid, b"started"],
           "expected [4, %d, b'started'] from the slow handler, got %r" % (sid, message))


# -- handshake and heartbeats ------------------------------------------------------------------


@scenario()
def handshake(start):
    """The first message is [1, worker_id, 1, pid], sent at once."""
    node = start()
    node.handshake()
    still_serving(node)


@scenario()
def no_node(start):
    """A socket nobody listens on: the worker exits non-zero and says why on stderr."""
    node = start(socket_path="/tmp/cocaine-conformance-nobody-listens-here.sock")
    code = node.wait_exit()
    expect(code != 0, "exit code %d, expected non-zero" % code)
    expect(node.stderr().strip(), "the worker exited without a word on stderr")


@scenario()
def silent_node(start):
    """A node that accepts and then says nothing: the worker exits after COCAINE_TIMEOUT_MS."""
    node = start(env={"COCAINE_TIMEOUT_MS": "500", "COCAINE_HEARTBEAT_MS": "100"})
    node.handshake()
    node.wait_exit(5.0)
    # Counted from the worker's start, which comes before anything it can time: counted from
    # when this process read the handshake, a late read (a loaded machine) shortened it.
    elapsed = time.monotonic() - node.started
    expect(elapsed >= 0.45, "the worker left %.2fs after its start, before the 0.5s "
           "timeout" % elapsed)


@scenario()
def heartbeats_sent(start):
    """With COCAINE_HEARTBEAT_MS=100 an idle worker sends [2] about every 100 ms."""
    node = start(env={"COCAINE_HEARTBEAT_MS": "100"})
    node.handshake()
    for _ in range(3):
        message = node.recv(timeout=2.0, skip_heartbeats=False)
        expect(message == [HEARTBEAT], "expected a heartbeat, got %r" % (message,))


@scenario()
def heartbeats_keep_alive(start):
    """Node heartbeats keep a worker with a short COCAINE_TIMEOUT_MS alive; silence ends it."""
    node = start(env={"COCAINE_TIMEOUT_MS": "600", "COCAINE_HEARTBEAT_MS": "100"})
    node.handshake()
    until = time.monotonic() + 1.5
    while time.monotonic() < until:
        node.send(HEARTBEAT)
        expect(node.running_after(0.1), "the worker exited although the node sent "
               "heartbeats%s" % node.why())
    still_serving(node)
    node.wait_exit(5.0)


# -- calls -------------------------------------------------------------------------------------


@scenario()
def plain_call(start):
    """echo: empty, one-chunk and three-chunk requests come back whole."""
    node = start()
    node.handshake()
    expect(body_of(node.call(1, "echo")) == b"", "an empty request must echo b''")
    expect(body_of(node.call(2, "echo", b"hello")) == b"hello", "echo of b'hello'")
    got = body_of(node.call(3, "echo", b"ab", b"", b"cd\x00\xff"))
    expect(got == b"abcd\x00\xff", "a chunked request is joined: got %r" % (got,))


@scenario()
def chunked_reply(start):
    """count 5: five reply chunks, then [5]."""
    node = start()
    node.handshake()
    reply = node.call(1, "count", b"5")
    expect(reply == [[CHUNK, 1, b"%d" % i] for i in range(1, 6)] + [[CHOKE, 1]],
           "expected chunks 1..5 then [5, 1], got %r" % (reply,))


@scenario()
def streaming(start):
    """stream: each request chunk is answered before the next one is sent."""
    node = start()
    node.handshake()
    node.send(INVOKE, 1, "stream", {})
    for i in range(4):
        data = b"piece-%d" % i
        node.send(CHUNK, 1, data)
        message = node.recv()
        expect(message == [CHUNK, 1, data], "expected %r echoed at once, got %r"
               % ([CHUNK, 1, data], message))
    node.send(CHOKE, 1)
    message = node.recv()
    expect(message == [CHOKE, 1], "expected [5, 1] at the end of the request, got %r"
           % (message,))


@scenario()
def unknown_event(start):
    """An event with no handler: [6, sid, 404, message]; the worker goes on."""
    node = start()
    node.handshake()
    code, message = error_of(node.call(1, "no_such_event", b"x"))
    expect(code == 404, "code %d, expected 404" % code)
    expect("no_such_event" in message, "the 404 message %r should name the event" % message)
    still_serving(node)


@scenario()
def handler_error(start):
    """A handler that raises: [6, sid, 502, text of the error]; the worker goes on."""
    node = start()
    node.handshake()
    code, message = error_of(node.call(1, "fail", b"kaboom-42"))
    expect(code == 502, "code %d, expected 502" % code)
    expect("kaboom-42" in message, "the 502 message %r should hold the error's text"
           % message)
    still_serving(node)


@scenario()
def error_code(start):
    """A handler that fails with a chosen code: [6, sid, 418, "teapot"]."""
    node = start()
    node.handshake()
    reply = node.call(1, "code", b"418 teapot")
    expect(reply == [[ERROR, 1, 418, "teapot"]], "expected [[6, 1, 418, 'teapot']], got %r"
           % (reply,))
    still_serving(node)


@scenario()
def cancel_running(start):
    """[7, sid] during a running job ends it with [6, sid, 499, ...] and nothing after."""
    node = start()
    node.handshake()
    node.send(INVOKE, 1, "slow", {})
    node.send(CHUNK, 1, b"20000")
    node.send(CHOKE, 1)
    wait_started(node, 1)
    node.send(CANCEL, 1)
    reply = node.reply(1, timeout=3.0)
    code, _ = error_of(reply)
    expect(code == 499, "code %d after a cancel, expected 499" % code)
    still_serving(node)


@scenario()
def cancel_waiting(start):
    """[7, sid] for a plain job whose request has not ended: [6, sid, 499, ...] at once."""
    node = start()
    node.handshake()
    node.send(INVOKE, 1, "echo", {})
    node.send(CHUNK, 1, b"half a request")
    node.send(CANCEL, 1)
    code, _ = error_of(node.reply(1))
    expect(code == 499, "code %d after a cancel, expected 499" % code)
    # Chunks and an end crossing the cancel on the wire are ignored.
    node.send(CHUNK, 1, b"late")
    node.send(CHOKE, 1)
    still_serving(node)


@scenario()
def large_request(start):
    """A request larger than max-message, in chunks within it, is served; a reply chunk over
    max-message fails its job with 413 instead of going out (the node would drop the worker)."""
    limit = 64 * 1024
    node = start(env={"COCAINE_MAX_MESSAGE": str(limit)})
    node.handshake()
    piece = b"x" * 50000
    node.send(INVOKE, 1, "stream", {})
    for i in range(6):
        node.send(CHUNK, 1, piece)
    node.send(CHOKE, 1)
    got = body_of(node.reply(1))
    expect(got == piece * 6, "stream of 6 x 50000 bytes came back as %d bytes" % len(got))
    reply = node.call(2, "echo", piece, piece, piece, piece)
    code, _ = error_of(reply)
    expect(code == 413, "echo of 200000 bytes with max-message %d: code %d, expected 413"
           % (limit, code))
    still_serving(node)


@scenario()
def malformed_frames(start):
    """Frames that are not valid node messages are ignored; the worker keeps serving."""
    node = start()
    node.handshake()
    node.send_raw(b"\x00\x00\x00\x00")                      # empty body
    node.send_raw(b"\x00\x00\x00\x01\xc1")                  # not msgpack
    node.send_raw(frame(42))                                # not an array
    node.send_raw(frame([]))                                # no kind
    node.send_raw(frame(["3", 1, "echo", {}]))              # kind not an integer
    node.send_raw(frame([99, 1]))                           # unknown kind
    node.send_raw(frame([3, 1]))                            # wrong arity
    node.send_raw(frame([3, "one", 5, {}]))                 # wrong types
    node.send_raw(frame([4, 1, 12]))                        # chunk that is not bytes
    node.send_raw(frame([4, 777, b"x"]))                    # chunk for no job
    node.send_raw(frame([5, 777]))                          # end for no job
    node.send_raw(frame([7, 777]))                          # cancel for no job
    node.send_raw(frame([HANDSHAKE, "x", 1, 1]))            # a worker -> node message
    node.send_raw(frame([ERROR, 1, 500, "x"]))              # another one
    still_serving(node)
    expect(node.proc.poll() is None, "the worker exited after malformed frames")


@scenario()
def split_and_joined_frames(start):
    """Frames cut into single bytes, and several frames in one write, read the same."""
    node = start()
    node.handshake()
    call = frame([INVOKE, 1, "echo", {}]) + frame([CHUNK, 1, b"byte by byte"]) + frame([CHOKE, 1])
    for i in range(len(call)):
        node.send_raw(call[i:i + 1])
    expect(body_of(node.reply(1)) == b"byte by byte", "a call sent byte by byte")
    joined = b"".join(frame([INVOKE, sid, "echo", {}]) + frame([CHUNK, sid, b"%d" % sid]) +
                      frame([CHOKE, sid]) for sid in range(2, 6))
    node.send_raw(joined[:7])
    node.send_raw(joined[7:])
    replies = node.replies(2, 3, 4, 5)
    for sid in range(2, 6):
        expect(body_of(replies[sid]) == b"%d" % sid, "job %d of four sent in one write" % sid)


@scenario()
def node_gone_mid_frame(start):
    """The node closes the channel in the middle of a frame: the worker exits."""
    node = start()
    node.handshake()
    node.send_raw(frame([INVOKE, 1, "echo", {}])[:6])
    node.hang_up()
    node.wait_exit(3.0)


@scenario()
def many_jobs(start):
    """Sixteen jobs open at once, their chunks interleaved: each gets its own reply."""
    node = start()
    node.handshake()
    sids = list(range(1, 17))
    for sid in sids:
        node.send(INVOKE, sid, "echo" if sid % 2 else "stream", {})
    for part in range(3):
        for sid in sids:
            node.send(CHUNK, sid, b"%d.%d;" % (sid, part))
    for sid in sids:
        node.send(CHOKE, sid)
    replies = node.replies(*sids)
    for sid in sids:
        want = b"".join(b"%d.%d;" % (sid, part) for part in range(3))
        got = body_of(replies[sid])
        expect(got == want, "job %d: reply %r, expected %r" % (sid, got, want))


@scenario("overlap")
def jobs_overlap(start):
    """While a slow job runs, another job is answered (concurrency > 1)."""
    node = start()
    node.handshake()
    node.send(INVOKE, 1, "slow", {})
    node.send(CHUNK, 1, b"20000")
    node.send(CHOKE, 1)
    wait_started(node, 1)
    got = body_of(node.call(2, "echo", b"meanwhile"))
    expect(got == b"meanwhile", "echo beside a slow job replied %r" % (got,))
    node.send(CANCEL, 1)
    code, _ = error_of(node.reply(1))
    expect(code == 499, "code %d after a cancel, expected 499" % code)


# -- leaving -----------------------------------------------------------------------------------


@scenario()
def terminate_idle(start):
    """[8, reason] to an idle worker: it exits 0 at once."""
    node = start()
    node.handshake()
    node.send(TERMINATE, "conformance")
    rest = node.expect_eof()
    expect(all(m[0] == TERMINATE for m in rest), "after [8] the worker sent %r" % (rest,))
    code = node.wait_exit()
    expect(code == 0, "exit code %d after [8], expected 0" % code)


@scenario()
def terminate_graceful(start):
    """[8, reason] while a job runs: the job finishes, then the worker exits 0."""
    node = start()
    node.handshake()
    node.send(INVOKE, 1, "slow", {})
    node.send(CHUNK, 1, b"300")
    node.send(CHOKE, 1)
    wait_started(node, 1)
    node.send(TERMINATE, "conformance")
    reply = node.reply(1)
    expect(body_of(reply) == b"done", "the running job must finish after [8]: got %r"
           % (reply,))
    rest = node.expect_eof()
    expect(all(m[0] == TERMINATE for m in rest), "after the job the worker sent %r" % (rest,))
    code = node.wait_exit()
    expect(code == 0, "exit code %d after [8], expected 0" % code)


@scenario()
def node_gone_idle(start):
    """The node closes the channel: the worker exits at once."""
    node = start()
    node.handshake()
    node.hang_up()
    node.wait_exit(3.0)


@scenario()
def node_gone_busy(start):
    """The node closes the channel while a job runs: the worker exits without finishing it."""
    node = start()
    node.handshake()
    node.send(INVOKE, 1, "slow", {})
    node.send(CHUNK, 1, b"20000")
    node.send(CHOKE, 1)
    wait_started(node, 1)
    node.hang_up()
    node.wait_exit(3.0)


def run(scenario_, start):
    """Runs one scenario; `start(**kw)` makes a FakeNode the caller will close. Returns None
    on success, else the failure's text."""
    try:
        scenario_.fn(start)
        return None
    except (Failure, EOFError) as e:
        return str(e) or type(e).__name__
