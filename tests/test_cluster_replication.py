"""Replication (docs/cluster.md, "Replication"), end to end on every runtime.

Four node slots on one machine over 127.0.0.1-4 (`--host`, every endpoint `tcp://*:PORT`),
each a static peer (`--peer`) of the others; three start at once, the fourth joins late.

- An app deployed with its package on node 0 runs on nodes 1 and 2 (same content hash) and
  answers calls there; an app with `cluster.replicate: false` stays on its node.
- Node 0 stops; the app is deleted on node 2 and disappears from node 1. Node 0 starts again
  from its store, which still holds the app: the tombstone wins, node 0 deletes it, and no
  node brings it back.
- A node joining late gets the apps that live and the tombstones of the deleted ones.
- `fetch` answers with the manifest and the package; the digests in the reply match.

Nothing sleeps a fixed time: every wait polls `list`, `info` or `peers` with a deadline.
"""

import hashlib
import json

from cluster_nodes import HOSTS, start_node, wait_for
from conftest import NativeClient, free_port
from control import (PACKAGED, PACKAGED_GREETING, cnode, deploy, error, ok,  # noqa: F401
                     packaged_manifest, raw, tar_package, wait_absent, wait_state)

# Four node slots: three start at once, the fourth joins late.
SLOTS = 4


def replicated(manifest, version):
    return dict(manifest, version=version, cluster={"replicate": True})


def record(node, app):
    return ok(node, "info")["replication"]["apps"].get(app)


def test_apps_travel_deletes_travel_and_nothing_comes_back(cnode, zctx):
    port, echo_port, web_port, local_port = free_port(), free_port(), free_port(), free_port()
    nodes = [start_node(cnode, i, port, SLOTS) for i in range(3)]
    # Everyone hears everyone before the deploy.
    for n in nodes:
        wait_for(n, "two peers", lambda p: len(p["peers"]) == 2, action="peers")

    package = tar_package(PACKAGED)
    echo = replicated(packaged_manifest("tcp://*:%d" % echo_port), 1)
    assert deploy(nodes[0], "echo", echo, package)["state"] == "running"
    local = dict(packaged_manifest("tcp://*:%d" % local_port), version=1,
                 cluster={"replicate": False})
    deploy(nodes[0], "mine", local, package)

    for n in nodes[1:]:
        entry = wait_state(n, "echo", timeout=30.0)
        assert entry["version"] == 1 and entry["origin"] == "store", entry
    hashes = {record(n, "echo")["hash"] for n in nodes}
    assert len(hashes) == 1 and len(hashes.pop()) == 64, [record(n, "echo") for n in nodes]

    # The copy answers calls, from the package it was sent.
    for i in (1, 2):
        client = NativeClient(zctx, "tcp://%s:%d" % (HOSTS[i], echo_port))
        try:
            assert client.call("hello", b"B").body == PACKAGED_GREETING + b", B!"
        finally:
            client.close()

    # `fetch` from node 1 gives back the manifest and the package, digests matching.
    reply_frames = raw_fetch(nodes[1], "echo")
    head = json.loads(reply_frames[0])["ok"]
    assert head["app"] == "echo" and head["version"] == 1, head
    assert head["manifest"]["cluster"] == {"replicate": True}, head
    assert reply_frames[1] == package
    assert head["package"] == hashlib.sha256(package).hexdigest(), head
    canonical = json.dumps(head["manifest"], sort_keys=True, separators=(",", ":")).encode()
    content = hashlib.sha256(canonical + b"\0" + hashlib.sha256(package).digest()).hexdigest()
    assert head["hash"] == content == record(nodes[0], "echo")["hash"], head
    message = error(nodes[0], "fetch", 404, app="mine")
    assert "not replicated" in message, message

    # The local app stayed local; peers announce it with no hash.
    peers = ok(nodes[1], "peers")
    announced = {p["node_id"]: p["apps"] for p in peers["peers"]}["node-0"]
    assert announced["mine"]["hash"] == "" and len(announced["echo"]["hash"]) == 64, announced
    for n in nodes[1:]:
        assert all(e["app"] != "mine" for e in ok(n, "list")), ok(n, "list")

    # A second replicated app, deployed on node 1, for the late joiner.
    web = replicated(packaged_manifest("tcp://*:%d" % web_port), 4)
    deploy(nodes[1], "web", web, package)
    for n in nodes:
        wait_state(n, "web", timeout=30.0)

    # Node 0 stops; echo is deleted on node 2 and leaves node 1.
    store0 = nodes[0].store
    nodes[0].stop()
    assert ok(nodes[2], "delete", app="echo") == {"app": "echo"}
    wait_absent(nodes[1], "echo", timeout=30.0)
    for n in nodes[1:]:
        assert record(n, "echo")["version"] == 1 and "deleted_at" in record(n, "echo")
    assert (nodes[1].store / "tombstones" / "echo.json").is_file()

    # Node 0 comes back from its store, which still holds echo: the tombstone wins.
    nodes[0] = start_node(cnode, 0, port, SLOTS, store=store0)
    wait_absent(nodes[0], "echo", timeout=30.0)
    wait_for(nodes[0], "echo's tombstone on node 0",
             lambda info: "deleted_at" in info["replication"]["apps"].get("echo", {}))
    # Once node 1 hears node 0 announce the tombstone, no one can bring echo back.
    wait_for(nodes[1], "node 0 to announce echo deleted",
             lambda p: any(peer["node_id"] == "node-0"
                           and peer["apps"].get("echo", {}).get("state") == "deleted"
                           for peer in p["peers"]), action="peers")
    for n in nodes:
        assert all(e["app"] != "echo" for e in ok(n, "list")), (n.control, ok(n, "list"))
    assert not (store0 / "apps" / "echo").exists()
    # The deleted version cannot be deployed again; a newer one can.
    message = error(nodes[1], "deploy", 409, package, app="echo", manifest=echo)
    assert "deleted at version 1" in message, message

    # A node joining late catches up: web arrives, echo's tombstone is recorded.
    late = start_node(cnode, 3, port, SLOTS)
    wait_state(late, "web", timeout=30.0)
    wait_for(late, "echo's tombstone on the late node",
             lambda info: "deleted_at" in info["replication"]["apps"].get("echo", {}))
    assert all(e["app"] != "echo" for e in ok(late, "list"))
    client = NativeClient(zctx, "tcp://%s:%d" % (HOSTS[3], web_port))
    try:
        assert client.call("hello", b"D").body == PACKAGED_GREETING + b", D!"
    finally:
        client.close()
    for n in [*nodes, late]:
        assert "panicked" not in n.log
        assert ok(n, "info")["replication"]["conflicts"] == {}


def raw_fetch(node, app):
    """`fetch` over a DEALER; the frames after the delimiter."""
    import zmq

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(node.control)
    try:
        sock.send_multipart([b"", json.dumps({"version": 1, "action": "fetch",
                                               "app": app}).encode()])
        assert sock.poll(10000), "no reply to fetch"
        frames = sock.recv_multipart()
    finally:
        sock.close()
    assert frames[0] == b"", frames
    return frames[1:]


def test_equal_versions_with_different_contents_are_reported(cnode):
    port, app_port = free_port(), free_port()
    nodes = [start_node(cnode, i, port, SLOTS) for i in range(2)]
    for n in nodes:
        wait_for(n, "the peer", lambda p: len(p["peers"]) == 1, action="peers")
    base = packaged_manifest("tcp://*:%d" % app_port)
    # One version, two contents, deployed on both before either copies the other: a race
    # the test wins by deploying them back to back (each node fetches only after hearing the
    # other, an interval later). Whichever way it goes, the nodes end in one of two stable
    # states: both report the conflict, or (if one copied the other first) the second deploy
    # made the conflict on purpose.
    deploy(nodes[0], "echo", replicated(base, 2), tar_package(PACKAGED, {"extra": "a"}))
    deploy(nodes[1], "echo", replicated(base, 2), tar_package(PACKAGED, {"extra": "b"}))
    for i, n in enumerate(nodes):
        info = wait_for(n, "the conflict", lambda v: "echo" in v["replication"]["conflicts"])
        conflict = info["replication"]["conflicts"]["echo"]
        assert conflict["version"] == 2 and conflict["peer"] == "node-%d" % (1 - i), conflict
        assert conflict["ours"] != conflict["theirs"], conflict
        assert ok(n, "info", app="echo")["replication"]["conflict"] == conflict
    # Stable: each keeps its own content, across many intervals (polled, not slept: the
    # announcements counter of the peer moves on meanwhile).
    ours = [record(n, "echo")["hash"] for n in nodes]
    start = {n.control: ok(n, "peers")["stats"]["received"] for n in nodes}
    for n in nodes:
        wait_for(n, "ten more announcements",
                 lambda p, n=n: p["stats"]["received"] >= start[n.control] + 10, action="peers")
    assert [record(n, "echo")["hash"] for n in nodes] == ours
    # A higher version settles it everywhere.
    deploy(nodes[0], "echo", replicated(base, 3), tar_package(PACKAGED))
    for n in nodes:
        wait_for(n, "version 3 and no conflict",
                 lambda v: v["replication"]["conflicts"] == {}
                 and v["replication"]["apps"]["echo"].get("version") == 3)
        wait_state(n, "echo")
