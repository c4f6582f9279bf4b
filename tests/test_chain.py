"""Sinks and the publishing chain (docs/protocol.md §4, §6): messages pushed to app A's sinks are
published by A; app B subscribes to A's pubsub and republishes them, transformed, on its own.
The apps are the example's (`manifests/apps/chain/`)."""

import json
import time

import zmq

from conftest import CHOKE, CHUNK, OPEN, REPO, Subscriber, endpoint, pack

CHAIN = REPO / "manifests" / "apps" / "chain"


def chain_apps():
    eps = {name: endpoint() for name in ("a_pubsub", "push", "invoke", "b_pubsub")}
    producer = {
        "type": "python", "args": "local://%s" % (CHAIN / "producer.py"),
        "pubsub": {"endpoint": eps["a_pubsub"], "interval": 500},
        "tasks": {
            "push": {"type": "zeromq-sink", "endpoint": eps["push"]},
            "invoke": {"type": "native-sink", "endpoint": eps["invoke"]},
        },
    }
    relay = {
        "type": "python", "args": "local://%s" % (CHAIN / "relay.py"),
        "pubsub": {"endpoint": eps["b_pubsub"], "interval": 500},
        "tasks": {"relay": {"type": "zeromq-subscriber", "endpoint": eps["a_pubsub"],
                            "subscribe": ["producer:push", "producer:invoke"]}},
    }
    return {"producer": producer, "relay": relay}, eps


def relayed(sub, timeout):
    """The next value B relayed: {"from", "field", "value"}."""
    _, value = sub.wait_for(lambda w, v: w[0] == "relay:relay" and w[1] == "relayed", timeout)
    return value


def test_messages_pushed_to_a_come_out_transformed_on_b(node, zctx):
    apps, eps = chain_apps()
    n = node(apps)
    sub = Subscriber(zctx, eps["b_pubsub"], "relay:relay")
    push = zctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(eps["push"])

    # The chain is live once a probe goes all the way through (a SUB hears nothing published
    # before its subscription reaches the PUB, at both hops).
    deadline = time.monotonic() + 20
    while True:
        push.send(b"probe")
        try:
            value = relayed(sub, 0.5)
            if value["value"] == "probe" or value["field"] == "word":
                break
        except TimeoutError:
            pass
        assert time.monotonic() < deadline, "the chain never went live; log:\n" + n.tail()

    # Drain the probes still in flight, then every message arrives, transformed, once each.
    # (No word of five letters: the probes are "probe", and their lengths are skipped.)
    words = ["ab", "four", "sixsix", "sevenly"]
    for word in words:
        push.send_multipart([word[:2].encode(), word[2:].encode()])
    got = {}
    deadline = time.monotonic() + 15
    while len(got) < 2 * len(words):
        value = relayed(sub, max(0.1, deadline - time.monotonic()))
        if value["value"] == "probe" or value["value"] == 5:
            continue
        key = (value["field"], value["value"])
        assert key not in got, "relayed twice: %r" % (key,)
        got[key] = value["from"]
    assert got == {
        **{("word", w): "producer:push" for w in words},
        **{("length", len(w)): "producer:push" for w in words},
    }

    # native-sink: a one-shot invoke is published, upper-cased, and relayed.
    invoke = zctx.socket(zmq.PUSH)
    invoke.setsockopt(zmq.LINGER, 0)
    invoke.connect(eps["invoke"])
    invoke.send_multipart([pack([OPEN, 1, "", {}, None]), pack([CHUNK, 1, b"shout"]),
                           pack([CHOKE, 1])])
    deadline = time.monotonic() + 15
    while True:
        value = relayed(sub, max(0.1, deadline - time.monotonic()))
        if value["from"] == "producer:invoke":
            assert value == {"from": "producer:invoke", "field": "result", "value": "SHOUT"}
            break
    push.close()
    invoke.close()
    sub.close()


def test_malformed_input_on_sinks_is_dropped_and_the_chain_goes_on(node, zctx):
    apps, eps = chain_apps()
    n = node(apps)
    invoke = zctx.socket(zmq.PUSH)
    invoke.setsockopt(zmq.LINGER, 0)
    invoke.connect(eps["invoke"])
    # Not msgpack, a truncated open, a chunk without an open, an open without an end.
    invoke.send(b"\xff\x00garbage")
    invoke.send(pack([OPEN, 1, "", {}, None])[:-2])
    invoke.send(pack([CHUNK, 9, b"orphan"]))
    invoke.send_multipart([pack([OPEN, 2, "", {}, None]), pack([CHUNK, 2, b"half"])])
    n.wait_for_log(r"producer/invoke|producer: .*native", timeout=10)
    # The sinks still work: a good invoke is published by A.
    sub = Subscriber(zctx, eps["a_pubsub"], "producer:invoke")
    deadline = time.monotonic() + 20
    while True:
        invoke.send_multipart([pack([OPEN, 3, "", {}, None]), pack([CHUNK, 3, b"ok"]),
                               pack([CHOKE, 3])])
        try:
            words, value = sub.recv(0.5)
            if words[1] == "result":
                assert value == "OK"
                break
        except TimeoutError:
            pass
        assert time.monotonic() < deadline, "the sink stopped working; log:\n" + n.tail()
    invoke.close()
    sub.close()
