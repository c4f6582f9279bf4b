"""Clusters of real nodes on one machine, shared by the cluster end-to-end tests (docs/cluster.md).

Node i of a cluster runs on loopback address HOSTS[i] (`--host`) with id `node-<i>`, and
announces every INTERVAL_MS. Every node of a cluster binds its control endpoint to the same
port on all addresses (`tcp://*:PORT`): its own address tells it apart, so each node names the
others as static peers (`--peer=tcp://HOST:PORT`) before they run. `n.control` is the node's
own address, where clients reach it.

Nothing sleeps a fixed time: the waits poll a control action with a deadline.
"""

import json
import time

from control import ok

INTERVAL_MS = 200
HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]


def start_node(cnode, i, port, size=3, store=None, extra_args=(), interval_ms=INTERVAL_MS):
    """Node i of a cluster of `size` node slots (HOSTS[:size]), every other slot a static
    peer; `store` to start again from a store a node left. A peer silent for three intervals
    is forgotten: a test whose nodes are busy for long (many workers starting at once) may
    need a longer `interval_ms` on a loaded machine."""
    hosts = HOSTS[:size]
    others = ["--peer=tcp://%s:%d" % (h, port) for h in hosts if h != hosts[i]]
    n = cnode(store=store, control="tcp://*:%d" % port, extra_args=[
        "--host", hosts[i], "--announce-interval", str(interval_ms), "--node-id", "node-%d" % i,
        *others, *extra_args])
    n.control = "tcp://%s:%d" % (hosts[i], port)
    return n


def start_cluster(cnode, port, size=3, interval_ms=INTERVAL_MS):
    """`size` nodes started at once, each the others' static peer."""
    return [start_node(cnode, i, port, size, interval_ms=interval_ms) for i in range(size)]


def wait_for(node, what, predicate, action="info", timeout=30.0, **args):
    """Polls a control action until `predicate(ok value)` holds; returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = ok(node, action, **args)
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; %s: %s\nlog tail:\n%s"
                                 % (what, action, json.dumps(value, indent=1), node.tail(40)))
        time.sleep(0.05)


def wait_peers(node, predicate, what, timeout=20.0):
    """Polls `peers` until `predicate(reply)` holds; returns the reply."""
    return wait_for(node, what, predicate, action="peers", timeout=timeout)


def by_id(reply):
    """A `peers` reply's peers by node id."""
    return {p["node_id"]: p for p in reply["peers"]}
