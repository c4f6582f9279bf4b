"""Test 5: 10,000 pipelined native requests against a small pool and queue."""

import time

import zmq

from conftest import CHOKE, CHUNK, ERROR, OPEN, NativeClient, Subscriber, endpoint, pack, python_app, unpack

TOTAL = 10_000
CLIENTS = 2
WINDOW = 300  # requests in flight per connection (the node allows 512)


def test_burst(node, zctx):
    ep, ps = endpoint(), endpoint()
    manifest = python_app(
        "basic.py",
        {"work": {"type": "native-server", "endpoint": ep}},
        engine={"pool-limit": 4, "queue-limit": 100, "idle-timeout": 1.0},
        pubsub={"endpoint": ps, "interval": 200},
    )
    node({"burst": manifest})
    sub = Subscriber(zctx, ps, "burst:engine")
    # The subscription is live once a stats publication arrives.
    sub.wait_for(lambda w, v: w[1] == "stats", timeout=5)
    # One worker up before the burst, so jobs are served (and the queue frees up) while
    # requests keep coming; the pool grows to the limit during the burst.
    warm = NativeClient(zctx, ep)
    assert warm.call("work", b"warm").ok
    warm.close()

    socks = []
    poller = zmq.Poller()
    for _ in range(CLIENTS):
        s = zctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(ep)
        socks.append(s)
        poller.register(s, zmq.POLLIN)
    per_client = TOTAL // CLIENTS
    sent = [0] * CLIENTS
    inflight = [0] * CLIENTS
    chunks = [dict() for _ in range(CLIENTS)]
    terminals = [dict() for _ in range(CLIENTS)]  # sid -> list of terminal messages
    problems = []

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
                else:
                    problems.append(("second terminal", i, m))
            else:
                problems.append(("unexpected", i, m))

    started = time.monotonic()
    deadline = started + 90
    while sum(len(t) for t in terminals) < TOTAL:
        assert time.monotonic() < deadline, "burst not answered in 90 s: %d of %d" % (
            sum(len(t) for t in terminals), TOTAL)
        for i, s in enumerate(socks):
            while sent[i] < per_client and inflight[i] < WINDOW:
                sent[i] += 1
                sid = sent[i]
                s.send_multipart([
                    pack([OPEN, sid, "work", {}, None]),
                    pack([CHUNK, sid, b"%d" % sid]),
                    pack([CHOKE, sid]),
                ])
                inflight[i] += 1
        for s, _ in poller.poll(5000):
            i = socks.index(s)
            while True:
                try:
                    receive(i, s.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
    burst_time = time.monotonic() - started
    # Nothing more may come: every sid already had its one terminal message.
    for s, _ in poller.poll(300):
        i = socks.index(s)
        while True:
            try:
                receive(i, s.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
    assert not problems, problems[:10]

    ok = rejected = 0
    for i in range(CLIENTS):
        assert sorted(terminals[i]) == list(range(1, per_client + 1))
        for sid, (m,) in terminals[i].items():
            if m[0] == CHOKE:
                ok += 1
                assert chunks[i].get(sid) == [b"%d" % sid], (sid, chunks[i].get(sid))
            else:
                assert m[2] == 503 and m[3] == "queue is full", m
                assert sid not in chunks[i]
                rejected += 1
    assert ok > 0 and rejected > 0, (ok, rejected)
    print("burst: %d ok, %d rejected in %.2fs" % (ok, rejected, burst_time))

    # The pool grew to the limit, never past it, and shrank after idle-timeout.
    alive, most, exited = set(), 0, 0
    stats_max = 0

    def track(words, value):
        nonlocal most, exited, stats_max
        if words[1] == "worker":
            if value["event"] in ("spawned", "ready"):
                alive.add(value["id"])
            elif value["event"] == "exited":
                alive.discard(value["id"])
                exited += 1
            most = max(most, len(alive))
        elif words[1] == "stats":
            w = value["workers"]
            total = w["starting"] + w["ready"] + w["draining"]
            stats_max = max(stats_max, total)
            if total == 0 and value["queue"] == 0 and exited >= 4:
                return True
        return False

    sub.wait_for(track, timeout=15)
    assert most == 4, most
    assert stats_max <= 4, stats_max
    assert exited >= 4 and not alive, (exited, alive)
    for s in socks:
        s.close(0)
