"""Sealed bodies end to end (docs/security.md, "Sealed bodies"), on every runtime: a node with
its own key pair (made in its state folder), a key folder and an app whose task requires
signatures. The CLI (the Rust client, `--seal`, the node's key given or fetched over control)
and the Python client (`seal=True`, sealing with `cryptography`: an independent
implementation) call it; the handler sees the plaintext and the user; the reply on the wire is
sealed, opens with the caller's key only, and never carries the plaintext. A tampered sealed
body, one sealed for another key, and an unsigned sealed request are refused with their codes
before any worker sees them (the app counts its calls), and the node keeps serving."""

import json
import sys

import msgpack
import pytest
import zmq

from conftest import PYTHON_SDK, endpoint
from control import cli, cnode  # noqa: F401 (cnode is a fixture)
from test_security_native import APP, keygen, manifest

sys.path.insert(0, str(PYTHON_SDK))
from cocaine._seal import SealError, Sealing  # noqa: E402  (the SDK from this source tree)
from cocaine._signing import Signing  # noqa: E402
from cocaine.client import Client  # noqa: E402

TIMEOUT = 20.0


@pytest.fixture
def keys(tmp_path):
    own, given = tmp_path / "own", tmp_path / "keys"
    own.mkdir()
    given.mkdir()
    for name in ["alice", "bob"]:
        keygen(own, name, bits=2048)
        (given / ("%s.pem" % name)).write_bytes((own / ("%s.pem" % name)).read_bytes())
    return own, given


def raw_call(address, frames, timeout=TIMEOUT):
    """Sends one multipart request and returns the node's messages for it until its end."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.connect(address)
    try:
        sock.send_multipart(frames)
        messages = []
        while not messages or messages[-1][0] not in (5, 6):
            messages += [msgpack.unpackb(f, raw=False) for f in sock.recv_multipart() if f]
        return messages
    finally:
        sock.close(0)


def sealed_frames(signing, sealing, sid, body, tamper=None):
    """A whole sealed request as the Python client builds it; `tamper` changes the sealed body
    before it is signed (a signing user sending a broken body)."""
    nonce = signing.nonce()
    sealed = sealing.seal(nonce, body)
    if tamper:
        sealed = tamper(sealed)
    opening = signing.open(sid, "whoami", {"sealed": True}, [sealed], nonce=nonce)
    return nonce, [opening, msgpack.packb([4, sid, sealed], use_bin_type=True),
                   msgpack.packb([5, sid], use_bin_type=True)]


def flip(at):
    def tamper(sealed):
        i = at % len(sealed)
        return sealed[:i] + bytes([sealed[i] ^ 1]) + sealed[i + 1:]
    return tamper


def test_sealed_calls_both_ways(cnode, keys, tmp_path):  # noqa: F811
    own, given = keys
    secure, open_ = endpoint(), endpoint()
    node = cnode(manifests={APP: manifest(secure, open_)}, extra_args=["--keys", str(given)])
    # The node makes its key pair when first needed, not at start (docs/security.md): the
    # first call below asks for its public half over control, which makes it.
    node_pem = node.store / "node.pem"

    # The CLI (Rust client): the node's key fetched over control, then pinned from a file.
    for extra in ([], ["--node-key", str(node_pem)]):
        assert not extra or node_pem.exists()
        done = cli("call", APP, "--event", "whoami", "top secret", "--task", "secure",
                   "--user", "alice", "--key", str(own / "alice.key"), "--seal", *extra,
                   node=node.control, timeout=60)
        assert done.returncode == 0, (done.stdout, done.stderr)
        reply = json.loads(done.stdout)
        assert reply["user"] == "alice" and reply["body"] == "top secret", reply
    calls = 2
    no_user = cli("call", APP, "--event", "whoami", "x", "--task", "secure", "--seal",
                  node=node.control, timeout=60)
    assert no_user.returncode == 2 and "--seal needs --user and --key" in no_user.stderr

    # The Python client, sealing with `cryptography`.
    with Client(secure, timeout=TIMEOUT, user="alice", key=own / "alice.key", app=APP,
                seal=True, node_key=node_pem) as client:
        reply = json.loads(client.call("whoami", b"from python"))
        assert reply == {"user": "alice", "body": "from python", "calls": calls + 1}, reply
        request = client.request("whoami")
        request.write(b"streamed ")
        request.write(b"and sealed")
        request.end()
        reply = json.loads(request.result())
        assert reply == {"user": "alice", "body": "streamed and sealed", "calls": calls + 2}
        assert client.connection_errors == []
    calls += 2

    # On the wire: one sealed chunk, no plaintext, opened by alice only.
    alice = Signing("alice", own / "alice.key", APP)
    to_node = Sealing(node_pem, alice._key, "alice", APP)
    nonce, frames = sealed_frames(alice, to_node, 1, b"wire secret")
    assert all(b"wire secret" not in f for f in frames)
    messages = raw_call(secure, frames)
    assert [m[0] for m in messages] == [4, 5], messages
    sealed_reply = messages[0][2]
    assert b"wire secret" not in sealed_reply and b"alice" not in sealed_reply
    reply = json.loads(to_node.open(nonce, sealed_reply))
    assert reply["body"] == "wire secret" and reply["user"] == "alice"
    calls += 1
    bob = Signing("bob", own / "bob.key", APP)
    bob_opens = Sealing(node_pem, bob._key, "alice", APP)
    with pytest.raises(SealError):
        bob_opens.open(nonce, sealed_reply)
    with pytest.raises(SealError):
        to_node.open(alice.nonce(), sealed_reply)  # bound to its own request

    # Refused before any worker: tampered parts, another key, an unsigned sealed request.
    for at, what in [(10, "wrapped key"), (-20, "ciphertext"), (-1, "tag")]:
        _, frames = sealed_frames(alice, to_node, 2, b"x", tamper=flip(at))
        messages = raw_call(secure, frames)
        assert messages[-1][:3] == [6, 2, 400] and "does not open" in messages[-1][3], (what,
                                                                                      messages)
    elsewhere = Sealing(own / "bob.pem", alice._key, "alice", APP)
    _, frames = sealed_frames(alice, elsewhere, 3, b"x")
    assert raw_call(secure, frames)[-1][:3] == [6, 3, 400]
    _, frames = sealed_frames(alice, to_node, 4, b"x", tamper=lambda s: b"garbage")
    refused = raw_call(secure, frames)[-1]
    assert refused[:3] == [6, 4, 400] and "not a sealed payload" in refused[3], refused
    unsigned = [msgpack.packb([3, 5, "whoami", {"sealed": True}, None], use_bin_type=True),
                msgpack.packb([4, 5, to_node.seal("n" * 16, b"x")], use_bin_type=True),
                msgpack.packb([5, 5], use_bin_type=True)]
    refused = raw_call(secure, unsigned)[-1]
    assert refused[:3] == [6, 5, 401] and "requires a signed request" in refused[3], refused
    # A task that checks no signatures cannot take sealed requests either: no verified user.
    refused = raw_call(open_, unsigned)[-1]
    assert refused[:3] == [6, 5, 401] and "must be signed" in refused[3], refused
    with Client(open_, timeout=TIMEOUT) as client:
        assert client.call("calls") == str(calls).encode()

    # The counters, over control.
    done = cli("keys", "--user", "alice", "--key", str(own / "alice.key"), node=node.control)
    assert done.returncode == 0, done.stderr
    sealed = json.loads(done.stdout)["sealed"]
    assert sealed["opened"] == calls and sealed["replies_sealed"] == calls, sealed
    assert sealed["not_opened"] == 4 and sealed["malformed"] == 1, sealed
    assert sealed["unsigned"] == 1, sealed
    assert node.proc.poll() is None


def test_python_client_seal_arguments(keys):
    own, _ = keys
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1", seal=True, node_key=own / "alice.pem")
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1", user="alice", key=own / "alice.key", app=APP, seal=True)
    with pytest.raises(TypeError):
        Client("tcp://127.0.0.1:1", user="alice", key=own / "alice.key", app=APP, seal=True,
               node_key=12)
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1", user="alice", key=own / "alice.key", app=APP, seal=True,
               node_key=own / "alice.key")
