"""Redeploy under load (issue 6): v1 -> v2 over control while thousands of pipelined calls are
in flight; every call gets exactly one ok reply, and replies switch from v1 to v2."""

import json
import socket
import time

import zmq

from conftest import CHOKE, CHUNK, ERROR, OPEN, NativeClient, endpoint, pack, unpack
from control import (cnode, deploy, error, ok, stored_revision, tar_package,  # noqa: F401
                     versioned_app)

CLIENTS = 12
WINDOW = 480        # calls in flight per connection (the node allows 512 per peer)
IN_FLIGHT = 5000    # calls in flight in total while the redeploy runs, at least
WARMUP = 1000       # calls answered by v1 before the redeploy is sent
TAIL = 200          # calls each client sends once the redeploy is answered
POOL = 2            # workers per version (concurrency 1)
BEFORE, DURING, AFTER = "before", "during", "after"  # when a call was sent, vs the redeploy


def test_redeploy_under_load(cnode, zctx):
    n = cnode()
    native = endpoint()
    tasks = {"echo": {"type": "native-server", "endpoint": native}}
    engine = {"queue-limit": 20000, "pool-limit": POOL}
    reply = deploy(n, "rd", versioned_app(1, tasks, engine=engine, manifest_version=1))
    assert reply == {"app": "rd", "version": 1, "state": "running", "redeployed": False}, reply
    warm = NativeClient(zctx, native)
    assert warm.call("echo", b"warm").body == b"v1:warm"
    warm.close()

    control = zctx.socket(zmq.DEALER)
    control.setsockopt(zmq.LINGER, 0)
    control.connect(n.control)
    socks = []
    poller = zmq.Poller()
    poller.register(control, zmq.POLLIN)
    for _ in range(CLIENTS):
        s = zctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.connect(native)
        socks.append(s)
        poller.register(s, zmq.POLLIN)
    index = {s: i for i, s in enumerate(socks)}

    sent = [0] * CLIENTS           # the last sid sent on each connection
    inflight = [0] * CLIENTS
    phase_of = [dict() for _ in range(CLIENTS)]    # sid -> BEFORE / DURING / AFTER
    chunks = [dict() for _ in range(CLIENTS)]      # sid -> reply chunks
    terminals = [dict() for _ in range(CLIENTS)]   # sid -> terminal messages
    order = []                     # (client, sid) in the order their replies ended
    answered_before = set()        # calls answered before the redeploy was sent
    problems = []
    phase = BEFORE
    tail_sent = [0] * CLIENTS
    redeploy_reply = None
    low_during = None              # fewest calls in flight seen while the redeploy ran
    after_refill_during = []       # calls in flight after each refill while it ran

    def receive(i, frames):
        for f in frames:
            if not f:
                continue
            m = unpack(f)
            kind, sid = m[0], m[1]
            if kind == CHUNK:
                if sid in terminals[i]:
                    problems.append(("chunk after the end", i, m))
                chunks[i].setdefault(sid, []).append(m[2])
            elif kind in (CHOKE, ERROR):
                seen = terminals[i].setdefault(sid, [])
                seen.append(m)
                if len(seen) == 1:
                    inflight[i] -= 1
                    order.append((i, sid))
                    if phase == BEFORE:
                        answered_before.add((i, sid))
                else:
                    problems.append(("second terminal", i, m))
            else:
                problems.append(("unexpected", i, m))

    def refill():
        for i, s in enumerate(socks):
            while inflight[i] < WINDOW:
                if phase == AFTER:
                    if tail_sent[i] >= TAIL:
                        break
                    tail_sent[i] += 1
                sent[i] += 1
                sid = sent[i]
                phase_of[i][sid] = phase
                s.send_multipart([
                    pack([OPEN, sid, "echo", {}, None]),
                    pack([CHUNK, sid, b"%d.%d" % (i, sid)]),
                    pack([CHOKE, sid]),
                ])
                inflight[i] += 1

    manifest2 = versioned_app(2, tasks, engine=engine, manifest_version=2)
    started = time.monotonic()
    deadline = started + 60
    while True:
        if phase == DURING:
            total = sum(inflight)
            low_during = total if low_during is None else min(low_during, total)
        refill()
        total = sum(inflight)
        if phase == DURING:
            after_refill_during.append(total)
        if phase == BEFORE and len(answered_before) >= WARMUP and total >= IN_FLIGHT:
            phase = DURING
            control.send_multipart([b"", json.dumps({
                "version": 1, "action": "deploy", "app": "rd", "manifest": manifest2}).encode()])
        if phase == AFTER and total == 0 and all(t >= TAIL for t in tail_sent):
            break
        assert time.monotonic() < deadline, (
            "not done in 60 s: phase %s, %d in flight, %d answered; log tail:\n%s"
            % (phase, total, len(order), n.tail()))
        for s, _ in poller.poll(1000):
            if s is control:
                frames = control.recv_multipart()
                assert frames[0] == b"" and len(frames) == 2, frames
                redeploy_reply = json.loads(frames[1])
                assert phase == DURING, redeploy_reply
                phase = AFTER
                continue
            i = index[s]
            # A bounded batch per connection, so refills stay frequent.
            for _ in range(200):
                try:
                    receive(i, s.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
    elapsed = time.monotonic() - started
    # Nothing more may come: every call already had its one terminal message.
    for s, _ in poller.poll(300):
        if s is not control:
            while True:
                try:
                    receive(index[s], s.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
    assert not problems, problems[:10]
    assert redeploy_reply == {"ok": {"app": "rd", "version": 2, "state": "running",
                                     "redeployed": True}}, redeploy_reply

    versions = {}
    errors = []
    for i in range(CLIENTS):
        assert sorted(terminals[i]) == list(range(1, sent[i] + 1)), i
        for sid, (m,) in terminals[i].items():
            if m[0] != CHOKE:
                errors.append((i, sid, phase_of[i][sid], m))
                continue
            body = b"".join(chunks[i].get(sid, []))
            payload = b"%d.%d" % (i, sid)
            assert body in (b"v1:" + payload, b"v2:" + payload), (i, sid, body)
            versions[(i, sid)] = body[:2]
    assert not errors, "%d calls failed, e.g. %r" % (len(errors), errors[:10])

    counts = {p: {b"v1": 0, b"v2": 0} for p in (BEFORE, DURING, AFTER)}
    for (i, sid), v in versions.items():
        counts[phase_of[i][sid]][v] += 1
    print("redeploy under load: %d calls in %.1fs, in flight during the redeploy: %d..%d "
          "(after refills: min %d); by phase sent: %r"
          % (len(versions), elapsed, low_during or 0, max(after_refill_during or [0]),
             min(after_refill_during or [0]), counts))
    # The load was there while the redeploy ran.
    assert after_refill_during and min(after_refill_during) >= IN_FLIGHT, after_refill_during[:20]
    # v1 answered before the redeploy; v2 answers every call sent after it was answered.
    assert all(versions[c] == b"v1" for c in answered_before), "v2 replied before the redeploy"
    assert len(answered_before) >= WARMUP
    assert counts[AFTER] == {b"v1": 0, b"v2": CLIENTS * TAIL}, counts
    # After some point only v2: on each connection (whose replies keep the node's order),
    # once a v2 reply has come, only the jobs the v1 workers were running at the switch may
    # still end with v1; at most one per worker slot.
    late_v1 = []
    for i in range(CLIENTS):
        seen_v2 = False
        for client, sid in order:
            if client != i:
                continue
            if versions[(i, sid)] == b"v2":
                seen_v2 = True
            elif seen_v2:
                late_v1.append((i, sid, phase_of[i][sid]))
    assert len(late_v1) <= POOL, late_v1

    entry = [e for e in ok(n, "list") if e["app"] == "rd"]
    assert len(entry) == 1 and entry[0]["version"] == 2 and entry[0]["state"] == "running", entry
    n.wait_for_log(r"rd: started \(version 2\)")
    fresh = NativeClient(zctx, native)
    assert fresh.call("echo", b"fresh").body == b"v2:fresh"
    fresh.close()
    for s in socks + [control]:
        s.close(0)


def package_of(version):
    """A one-file package whose handler answers `b"p<version>:" + request`."""
    return tar_package(files={"versioned_pkg.py": (
        "import os\n\n\n"
        "def echo(request):\n    return [b'p%d:' + request]\n\n\n"
        "def die(request):\n    os._exit(3)\n" % version)})


def test_redeploy_replaces_the_package(cnode, zctx):
    n = cnode()
    native = endpoint()
    tasks = {"echo": {"type": "native-server", "endpoint": native}}
    manifest = {"type": "python", "args": "local://versioned_pkg.py", "tasks": tasks}
    client = NativeClient(zctx, native)

    reply = deploy(n, "pk", dict(manifest, version=1), package_of(1))
    assert reply == {"app": "pk", "version": 1, "state": "running", "redeployed": False}, reply
    assert client.call("echo", b"a").body == b"p1:a"
    reply = deploy(n, "pk", dict(manifest, version=2), package_of(2))
    assert reply == {"app": "pk", "version": 2, "state": "running", "redeployed": True}, reply
    assert client.call("echo", b"b").body == b"p2:b"
    assert b"p2:" in (stored_revision(n.store, "pk") / "package" / "versioned_pkg.py").read_bytes()

    # A bad manifest changes nothing.
    message = error(n, "deploy", 400, package_of(3), app="pk", manifest=dict(manifest, version="3"))
    assert "version" in message, message
    assert client.call("echo", b"c").body == b"p2:c"

    # A new version that cannot bind its new endpoint is torn down; the running one goes on.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = "tcp://127.0.0.1:%d" % taken.getsockname()[1]
        broken = dict(manifest, version=4,
                      tasks=dict(tasks, other={"type": "native-server", "endpoint": busy}))
        message = error(n, "deploy", 500, package_of(4), app="pk", manifest=broken, timeout=30)
        assert busy in message, message
        assert client.call("echo", b"d").body == b"p2:d"
    # The running version's next worker still runs its own code, not the refused version's
    # package.
    assert client.call("die").code == 500
    assert client.call("echo", b"d2").body == b"p2:d2"

    # Without a package, the old one is gone from the store and `args` must be absolute.
    reply = deploy(n, "pk", versioned_app(1, tasks, manifest_version=5))
    assert reply == {"app": "pk", "version": 5, "state": "running", "redeployed": True}, reply
    assert client.call("echo", b"e").body == b"v1:e"
    current = stored_revision(n.store, "pk")
    assert not (current / "package").exists()
    # The replaced revisions leave the store once their version has left.
    deadline = time.monotonic() + 20
    while sorted(p.name for p in current.parent.glob("r*")) != [current.name]:
        assert time.monotonic() < deadline, sorted(current.parent.iterdir())
        time.sleep(0.05)
    client.close()
