"""Cluster security end to end (docs/cluster.md, "Signed announcements"), on every runtime.

Two nodes over 127.0.0.1/2 with `--cluster-auth required` and `--auth required` on control,
their key pairs made by `cocaine keygen node --out STORE` before they start and given to each
other as `<node_id>.pem` in a shared `--keys` folder, and a third node whose key nobody has:

- the two see each other; the third's signed announcements are dropped (`unknown_key`), as
  are an unsigned one and one forged under node-1's id with a huge `seq` (which does not
  hijack node-1's entry: its real announcements keep being taken);
- an app deployed on node-0 (a signed request from the operator) runs on node-1: node-1's
  `fetch` is signed with its key, which node-0's control requires;
- the third node made its own key at start (it signs), on a thread, and says so.
"""

import json
import os
import shutil
import socket
import time

import msgpack
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from cluster_nodes import HOSTS, start_node
from conftest import free_port
from control import cli, cnode, request_frames, versioned_app  # noqa: F401 (cnode: a fixture)


def keygen(folder, name):
    done = cli("keygen", name, "--out", str(folder), "--bits", "2048", timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)


class Operator:
    """Signs control requests as user `op` (RSA-PSS, SHA-256, 32-byte salt) with `cryptography`."""

    def __init__(self, key_path):
        with open(key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), None)

    def ask(self, node, action, *frames, **args):
        body = dict(version=1, action=action, **args, user="op",
                    ts=int(time.time() * 1000), nonce=os.urandom(16).hex())
        text = json.dumps(body).encode()
        sig = self.key.sign(text, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                            hashes.SHA256())
        reply = json.loads(request_frames(node.control, [text, *frames, sig])[0])
        assert "ok" in reply, (action, reply, node.tail(30))
        return reply["ok"]


def wait(what, probe, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def test_signed_announcements_and_signed_fetch(cnode, tmp_path):
    port, app_port = free_port(), free_port()
    keys, own = tmp_path / "keys", tmp_path / "own"
    keys.mkdir()
    own.mkdir()
    keygen(own, "op")
    shutil.copy(own / "op.pem", keys / "op.pem")
    nodes = []
    for i in range(3):
        store = tmp_path / ("store%d" % i)
        args = ["--cluster-auth", "required", "--auth", "required"]
        if i < 2:
            # The operator makes the node's pair ahead and hands its public half to the others.
            store.mkdir()
            keygen(store, "node")
            shutil.copy(store / "node.pem", keys / ("node-%d.pem" % i))
            args += ["--keys", str(keys)]
        nodes.append(start_node(cnode, i, port, store=store, extra_args=args))
    op = Operator(own / "op.key")
    a, b, rogue = nodes

    def peers(n):
        return op.ask(n, "peers")

    def ids(reply):
        return sorted(p["node_id"] for p in reply["peers"])

    # The two see each other; the third's signed announcements are refused.
    for n, other in [(a, "node-1"), (b, "node-0")]:
        wait("%s to be seen" % other, lambda n=n, other=other: ids(peers(n)) == [other])
        wait("node-2's announcements refused",
             lambda n=n: peers(n)["stats"]["unknown_key"] >= 2)
    reply = peers(a)
    assert reply["discovery"]["auth"] == "required", reply
    assert reply["stats"]["bad_signature"] == 0 and reply["stats"]["unsigned"] == 0, reply
    # The third node made its own key at start and signs with it.
    rogue.wait_for_log(r"node key: SHA256:\S+ \(.*node\.pem\)")
    assert (rogue.store / "node.key").exists()

    # Unsigned, and forged under node-1's id with a huge seq: refused; node-1 keeps its entry.
    app = {"version": 1, "hash": "", "tasks": {}, "queue": 0, "busy": 0, "workers": 0,
           "pool_limit": 1, "queue_limit": 1, "state": "running"}
    unsigned = msgpack.packb([1, "node-1", 2 ** 62, "tcp://127.0.0.2:%d" % port, {"x": app},
                              None], use_bin_type=True)
    forged = msgpack.packb([1, "node-1", 2 ** 62, "tcp://127.0.0.2:%d" % port, {"x": app},
                            os.urandom(256)], use_bin_type=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(unsigned, (HOSTS[0], port))
        sock.sendto(forged, (HOSTS[0], port))
    finally:
        sock.close()
    wait("the forgeries to be counted", lambda: (
        peers(a)["stats"]["unsigned"] == 1 and peers(a)["stats"]["bad_signature"] == 1))
    seq = [p for p in peers(a)["peers"] if p["node_id"] == "node-1"][0]["seq"]
    assert seq < 2 ** 62
    wait("node-1's next announcement", lambda: [
        p for p in peers(a)["peers"] if p["node_id"] == "node-1"][0]["seq"] > seq)

    # A replicated app deployed on node-0 runs on node-1: node-1's fetch was signed.
    manifest = versioned_app(1, {"echo": {"type": "native-server",
                                          "endpoint": "tcp://*:%d" % app_port}},
                             manifest_version=2)
    manifest["cluster"] = {"replicate": True}
    op.ask(a, "deploy", app="reply", manifest=manifest)

    def running_on_b():
        return any(e["app"] == "reply" and e["state"] == "running" and e["version"] == 2
                   for e in op.ask(b, "list"))

    wait("the app to run on node-1", running_on_b, timeout=30.0)
    assert op.ask(a, "keys")["stats"]["unsigned"] == 0
    b.wait_for_log(r"reply: version 2 copied from peer node-0")
