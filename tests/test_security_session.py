"""Session keys end to end (docs/security.md, "Session keys"), on every runtime: a node with a
key folder and an app whose task requires signed users.
Requests in a session from the Python client (`cryptography` unwraps the key, `hmac` MACs: an
implementation independent of the node's) and from the CLI (the Rust client) reach the handler
with the user; a wrong session key, a replayed request, a session after its end and a session
whose user's key was removed while the node runs are refused with their codes (a sealed request
in a session with 400), and the app's
own count of calls proves none reached the worker; the node keeps serving the others."""

import json
import os
import sys
import time

import msgpack
import pytest

from conftest import PYTHON_SDK, NativeClient, endpoint
from control import cli, cnode  # noqa: F401 (a fixture)
from test_security_native import APP, keygen, manifest, send

sys.path.insert(0, str(PYTHON_SDK))
from cocaine.client import CallError, Client  # noqa: E402  (the SDK from this source tree)

TIMEOUT = 20.0
# The node's default lifetime (600 s): no step of the main test may outlive its session, however
# slow a loaded machine makes them (a forged key replaced by the client's renewal, a session
# counted twice). Ends are tried on their own node, with short sessions.
LONG_TTL_MS = 600_000
# Short sessions for the test of their end: it waits for the end, so only the steps between a
# session's open and its first use must fit in it.
SHORT_TTL_MS = 6000


def wait_past(ms):
    """Waits until the wall clock is past `ms` (unix milliseconds): a session's stated end."""
    while time.time() * 1000 <= ms:
        time.sleep(max(0.01, (ms - time.time() * 1000) / 1000 + 0.01))


def in_session(client, sid, body, event="whoami"):
    """The frames of a request in `client`'s session, built by the Python package."""
    return client._sessions.open(sid, event, {}, [body])


def guarded_node(cnode, tmp_path, extra_args=()):  # noqa: F811
    """A node with alice's and bob's keys and the guarded app; (node, key folder, key path of a
    user, a session client of a user, the secure endpoint, the open endpoint)."""
    own, keys = tmp_path / "own", tmp_path / "keys"
    own.mkdir()
    keys.mkdir()
    for name in ["alice", "bob"]:
        keygen(own, name, bits=2048)
        (keys / ("%s.pem" % name)).write_bytes((own / ("%s.pem" % name)).read_bytes())
    key = lambda name: own / ("%s.key" % name)  # noqa: E731
    secure, open_ = endpoint(), endpoint()
    node = cnode(manifests={APP: manifest(secure, open_)},
                 extra_args=["--keys", str(keys), *extra_args])

    def session(user):
        return Client(secure, timeout=TIMEOUT, user=user, key=key(user), app=APP, session=True)

    return node, keys, key, session, secure, open_


def calls_counted(open_):
    """The app's own count of the calls that reached it."""
    with Client(open_, timeout=TIMEOUT) as counter:
        return int(counter.call("calls"))


def session_stats(node, key):
    """The node's session counters and lifetime, over signed control (`cocaine keys`)."""
    done = cli("keys", "--user", "alice", "--key", str(key("alice")), node=node)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["sessions"]


def test_sessions_from_the_python_client_and_the_cli(cnode, zctx, tmp_path):  # noqa: F811
    node, keys, key, session, secure, open_ = guarded_node(cnode, tmp_path)

    # Python: one signed session-open, then calls with an HMAC; the handler sees the user.
    alice = session("alice")
    for i in range(1, 4):
        reply = json.loads(alice.call("whoami", b"call %d" % i))
        assert reply == {"user": "alice", "body": "call %d" % i, "calls": i}, reply
    accepted = 3
    # A stream goes in the session at its end.
    request = alice.request("whoami")
    request.write(b"one ")
    request.write(b"two")
    request.end()
    assert json.loads(request.result())["body"] == "one two"
    accepted += 1

    # The CLI (the Rust client) in a session.
    done = cli("call", APP, "--event", "whoami", "from the cli", "--task", "secure",
               "--user", "bob", "--key", str(key("bob")), "--session", node=node, timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert json.loads(done.stdout) == {"user": "bob", "body": "from the cli",
                                       "calls": accepted + 1}
    accepted += 1

    # A wrong session key: 401, nothing ran, and the client's session goes on.
    session_id, real_key, expires_ms, margin = alice._sessions.session
    alice._sessions.session = (session_id, os.urandom(32), expires_ms, margin)
    with pytest.raises(CallError) as failed:
        alice.call("whoami", b"forged")
    assert failed.value.code == 401, failed.value
    assert failed.value.message.startswith("bad session MAC"), failed.value
    alice._sessions.session = (session_id, real_key, expires_ms, margin)

    # A replay, by hand: the same frames twice; the second is refused.
    raw = NativeClient(zctx, secure)
    frame = in_session(alice, 1, b"once")
    reply = send(raw, frame, 1, b"once")
    assert reply.ok and json.loads(reply.body)["user"] == "alice", reply
    accepted += 1
    reply = send(raw, frame, 1, b"once")
    assert reply.code == 401 and reply.message.startswith("replayed: seq"), reply
    # Another body than the one MAC'd: refused at the body's end.
    reply = send(raw, in_session(alice, 2, b"pay 10"), 2, b"pay 1000")
    assert reply.code == 401 and "does not match" in reply.message, reply
    # Sealed in a session: a clear 400 from the node, before anything runs; the clients
    # refuse the pair before sending (docs/security.md, "Session keys and sealed bodies").
    sealed = alice._sessions.open(9, "whoami", {"sealed": True}, [b"sealed?"])
    reply = send(raw, sealed, 9, b"sealed?")
    assert reply.code == 400 and "cannot be made in a session" in reply.message, reply
    with pytest.raises(ValueError):
        Client(secure, user="alice", key=key("alice"), app=APP, session=True, seal=True,
               node_key="node.pem")
    done = cli("call", APP, "--event", "whoami", "x", "--task", "secure", "--user", "bob",
               "--key", str(key("bob")), "--session", "--seal", node=node, timeout=60)
    assert done.returncode != 0 and "--session" in done.stderr, (done.stdout, done.stderr)

    # Bob's key removed while the node runs: his session goes with it; alice goes on.
    bob = session("bob")
    assert json.loads(bob.call("whoami", b"bob's"))["user"] == "bob"
    accepted += 1
    bobs = bob._sessions.session
    os.remove(keys / "bob.pem")
    node.wait_for_log(r'session\(s\) of "bob" dropped', 10)
    reply = send(raw, in_session(bob, 4, b"x"), 4, b"x")
    assert (reply.code, reply.message) == (401, "unknown session"), reply
    with pytest.raises(CallError) as failed:  # reopening needs his key: refused too
        bob.call("whoami", b"x")
    assert failed.value.code == 401 and 'unknown user "bob"' in failed.value.message
    assert bob._sessions.session is None and bobs is not None
    assert json.loads(alice.call("whoami", b"still here"))["user"] == "alice"
    accepted += 1

    # Nothing refused reached the worker: it counted only the accepted calls.
    assert calls_counted(open_) == accepted

    sessions = session_stats(node, key)
    stats = sessions["stats"]
    assert sessions["lifetime_ms"] == LONG_TTL_MS, sessions
    assert stats["opened"] == 3, stats  # alice, bob by the CLI and by Python
    assert (stats["bad_mac"], stats["replayed"], stats["expired"]) == (1, 1, 0), stats
    assert stats["bad_open"] == 1, stats  # the sealed one
    # Bob's by hand and by his client after his key went.
    assert stats["unknown_session"] == 2, stats
    assert stats["dropped"] == 2, stats  # bob's two (the CLI's and the Python client's)
    # Every call that ran, and the one whose body did not match (its open was sound).
    assert stats["accepted"] == accepted + 1, stats
    for client in (alice, bob, raw):
        client.close()
    assert node.proc.poll() is None


def test_a_session_after_its_end_is_refused_and_renewed(cnode, zctx, tmp_path):  # noqa: F811
    node, _, key, session, secure, open_ = guarded_node(
        cnode, tmp_path, ["--session-ttl", str(SHORT_TTL_MS / 1000)])
    alice = session("alice")
    assert json.loads(alice.call("whoami", b"first"))["user"] == "alice"
    # After its end the session is refused ("session expired", then forgotten: unknown); the
    # Python client, told so, opens a new one and its call goes through.
    raw = NativeClient(zctx, secure)
    stale = alice._sessions.session
    wait_past(stale[2])
    reply = send(raw, in_session(alice, 3, b"late"), 3, b"late")
    assert (reply.code, reply.message) == (401, "session expired"), reply
    alice._sessions.session = (stale[0], stale[1], stale[2] + 3_600_000, 0)  # it thinks fresh
    reply = json.loads(alice.call("whoami", b"renewed"))
    assert reply["body"] == "renewed" and reply["user"] == "alice", reply
    assert alice._sessions.session[0] != stale[0]
    # The late request never ran.
    assert calls_counted(open_) == 2

    sessions = session_stats(node, key)
    stats = sessions["stats"]
    assert sessions["lifetime_ms"] == SHORT_TTL_MS, sessions
    assert (stats["opened"], stats["expired"], stats["unknown_session"]) == (2, 1, 1), stats
    assert stats["accepted"] == 2, stats
    for client in (alice, raw):
        client.close()
    assert node.proc.poll() is None


def test_session_frames_are_what_the_docs_say(tmp_path):
    """The Python package's open in a session is the documented map, MAC'd over the frame less
    its `mac` entry, and the built-in codec writes the same bytes as the msgpack package."""
    import hashlib
    import hmac
    from cocaine import _msgpack
    from cocaine._session import Sessions
    from cocaine._signing import Signing
    keygen(tmp_path, "alice", bits=2048)
    sessions = Sessions(Signing("alice", tmp_path / "alice.key", APP))
    key = os.urandom(32)
    sessions.session = (b"\x01" * 16, key, 2 ** 62, 0)
    frame = sessions.open(7, "whoami", {"urgent": True}, [b"pay ", b"10"])
    message = msgpack.unpackb(frame, raw=False)
    auth = message[4]
    assert list(auth) == ["session", "seq", "app", "body", "mac"]
    assert (auth["seq"], auth["app"], auth["body"]) == (1, APP, hashlib.sha256(b"pay 10").digest())
    mac = auth.pop("mac")
    maced = msgpack.packb(message, use_bin_type=True)
    assert _msgpack.packb(message) == maced
    assert hmac.compare_digest(mac, hmac.new(key, maced, hashlib.sha256).digest())
    tail = msgpack.packb(auth, use_bin_type=True)
    assert tail[0] == 0x84 and frame == (maced[:-len(tail)] + b"\x85" + tail[1:]
                                         + msgpack.packb("mac") + msgpack.packb(mac))
    again = msgpack.unpackb(sessions.open(8, "whoami", {}, []), raw=False)[4]
    assert again["seq"] == 2
