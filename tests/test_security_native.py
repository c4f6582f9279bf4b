"""Signed native-protocol requests end to end (docs/security.md), on every runtime: keys made by
`cocaine keygen` (checked with the openssl command line), a node with a key folder and an app
whose task requires signatures from listed users, calls signed by the CLI (the Rust client) and
by hand (pyzmq + the openssl command line). A signed call runs and its handler sees the user;
every refusal gets its code before any worker sees it (the app counts its calls); a key removed
while the node runs is refused and the node keeps serving the others."""

import base64
import hashlib
import json
import os
import stat
import subprocess
import time

import msgpack

from conftest import NativeClient, Reply, app_args, endpoint
from control import cli, cnode, ok  # noqa: F401 (cnode is a fixture)

APP = "guarded"


def keygen(folder, name, bits=None):
    args = ["keygen", name, "--out", str(folder)] + (["--bits", str(bits)] if bits else [])
    done = cli(*args, timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def fingerprint(pem_path):
    der = openssl("pkey", "-pubin", "-in", str(pem_path), "-outform", "DER")
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def manifest(secure, open_):
    return {"type": "python", "args": app_args("whoami.py"),
            "engine": {"pool-limit": 1, "pool-min": 1},
            "tasks": {
                "secure": {"type": "native-server", "endpoint": secure,
                           "security": {"auth": "required", "users": ["alice", "bob"]}},
                "open": {"type": "native-server", "endpoint": open_,
                         "security": {"auth": "off"}}}}


def signed_open(tmp_path, key, user, sid, event, body, ts=None, nonce=None, app=APP):
    """`[3, sid, event, {}, auth]` signed with the openssl command line over the open without
    `sig` (the same msgpack, the map one key shorter)."""
    auth = {"user": user, "ts": int(time.time() * 1000) if ts is None else ts,
            "nonce": nonce or os.urandom(16).hex(), "app": app,
            "body": hashlib.sha256(body).digest()}
    part = msgpack.packb([3, sid, event, {}, auth], use_bin_type=True)
    (tmp_path / "open.bin").write_bytes(part)
    sig = openssl("dgst", "-sha256", "-sign", str(key), "-sigopt", "rsa_padding_mode:pss",
                  "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256",
                  str(tmp_path / "open.bin"))
    auth["sig"] = sig
    return msgpack.packb([3, sid, event, {}, auth], use_bin_type=True)


def send(client, open_frame, sid, body):
    client.replies[sid] = Reply(sid)
    client.send_raw(open_frame, msgpack.packb([4, sid, body], use_bin_type=True),
                    msgpack.packb([5, sid], use_bin_type=True))
    return client.wait(sid)


def call(node, user=None, key=None, body="hello", app=APP, task="secure"):
    args = ["call", app, "--event", "whoami", body, "--task", task]
    if user:
        args += ["--user", user, "--key", str(key)]
    return cli(*args, node=node, timeout=60)


def refused(done, code, text):
    out = done.stdout + done.stderr
    assert done.returncode == 1 and ("error %d" % code) in out and text in out, (
        done.returncode, done.stdout, done.stderr)


def test_keygen_writes_a_pair_openssl_reads(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    done = keygen(keys, "alice")
    private, public = keys / "alice.key", keys / "alice.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    text = openssl("pkey", "-in", str(private), "-text", "-noout").decode()
    assert "3072 bit" in text, text[:200]
    openssl("pkey", "-in", str(private), "-check", "-noout")
    assert openssl("pkey", "-in", str(private), "-pubout") == public.read_bytes()
    assert fingerprint(public) in done.stdout, done.stdout
    # A signature made with the written key verifies with openssl as RSA-PSS.
    (tmp_path / "m").write_bytes(b"message")
    sig = openssl("dgst", "-sha256", "-sign", str(private), "-sigopt", "rsa_padding_mode:pss",
                  "-sigopt", "rsa_pss_saltlen:32", str(tmp_path / "m"))
    (tmp_path / "m.sig").write_bytes(sig)
    out = openssl("dgst", "-sha256", "-verify", str(public), "-sigopt", "rsa_padding_mode:pss",
                  "-sigopt", "rsa_pss_saltlen:32", "-signature", str(tmp_path / "m.sig"),
                  str(tmp_path / "m"))
    assert b"Verified OK" in out
    # Never overwritten; bad names and sizes refused (exit 2).
    again = cli("keygen", "alice", "--out", str(keys))
    assert again.returncode == 2 and "exists already" in again.stderr, again.stderr
    assert cli("keygen", "../x", "--out", str(keys)).returncode == 2
    assert cli("keygen", "small", "--bits", "1024", "--out", str(keys)).returncode == 2


def test_signed_native_calls(cnode, zctx, tmp_path):  # noqa: F811
    own = tmp_path / "own"
    own.mkdir()
    for name in ["alice", "bob", "carol", "dave"]:
        keygen(own, name, bits=2048)
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ["alice", "bob", "carol"]:  # dave's key is not given to the node
        (keys / ("%s.pem" % name)).write_bytes((own / ("%s.pem" % name)).read_bytes())
    secure, open_ = endpoint(), endpoint()
    node = cnode(manifests={APP: manifest(secure, open_)},
                 extra_args=["--keys", str(keys), "--auth", "required"])
    key = lambda name: own / ("%s.key" % name)  # noqa: E731

    # The node's own key pair is made in its state folder when first needed, not at start.
    assert not (node.store / "node.key").exists()
    done = cli("pubkey", "--user", "alice", "--key", str(key("alice")), node=node)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((node.store / "node.key").stat().st_mode) == 0o600
    assert done.stdout.encode() == (node.store / "node.pem").read_bytes()
    assert fingerprint(node.store / "node.pem") in done.stderr
    refused(cli("pubkey", node=node), 401, "requires a signed request")

    # A signed call runs; the handler sees the user.
    done = call(node, "alice", key("alice"))
    assert done.returncode == 0, (done.stdout, done.stderr)
    reply = json.loads(done.stdout)
    assert reply == {"user": "alice", "body": "hello", "calls": 1}, reply
    accepted = 1

    # Refusals through the CLI, each with its code.
    refused(call(node, body="x"), 401, "")  # unsigned: even the lookup needs a signature
    done = cli("call", secure, "--event", "whoami", "x", node=node)
    refused(done, 401, "requires a signed request")
    refused(call(node, "carol", key("carol")), 403, 'user "carol" may not call this task')
    done = cli("call", secure, "--app", APP, "--event", "whoami", "x",
               "--user", "dave", "--key", str(key("dave")), node=node)
    refused(done, 401, 'unknown user "dave"')
    done = cli("call", secure, "--app", APP, "--event", "whoami", "x",
               "--user", "alice", "--key", str(key("bob")), node=node)
    refused(done, 401, 'bad signature for user "alice"')
    done = cli("call", secure, "--app", "other", "--event", "whoami", "x",
               "--user", "alice", "--key", str(key("alice")), node=node)
    refused(done, 401, "signed for app")

    # By hand: replay, expired, future-dated, another body than the signed one.
    client = NativeClient(zctx, secure)
    frame = signed_open(tmp_path, key("bob"), "bob", 1, "whoami", b"by hand")
    reply = send(client, frame, 1, b"by hand")
    assert reply.ok and json.loads(reply.body)["user"] == "bob", reply
    accepted += 1
    reply = send(client, frame, 1, b"by hand")
    assert (reply.code, reply.message.split(":")[0]) == (401, "replayed"), reply
    now = int(time.time() * 1000)
    reply = send(client, signed_open(tmp_path, key("bob"), "bob", 2, "whoami", b"x", ts=now - 60000), 2, b"x")
    assert reply.code == 401 and reply.message.startswith("expired"), reply
    reply = send(client, signed_open(tmp_path, key("bob"), "bob", 3, "whoami", b"x", ts=now + 60000), 3, b"x")
    assert reply.code == 401 and reply.message.startswith("from the future"), reply
    reply = send(client, signed_open(tmp_path, key("bob"), "bob", 4, "whoami", b"pay 10"), 4, b"pay 1000")
    assert reply.code == 401 and "does not match its signed digest" in reply.message, reply

    # Nothing refused reached the worker: it counted only the accepted calls.
    open_client = NativeClient(zctx, open_)
    sid = open_client.send_call("calls")
    reply = open_client.wait(sid)
    assert reply.ok and reply.body == str(accepted).encode(), reply

    # Bob's key removed while the node runs: refused; alice still served.
    os.remove(keys / "bob.pem")
    node.wait_for_log(r'key of "bob" removed', 10)
    reply = send(client, signed_open(tmp_path, key("bob"), "bob", 5, "whoami", b"x"), 5, b"x")
    assert reply.code == 401 and 'unknown user "bob"' in reply.message, reply
    done = call(node, "alice", key("alice"), body="still here")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert json.loads(done.stdout) == {"user": "alice", "body": "still here", "calls": accepted + 1}

    # The counters, over signed control (`cocaine keys`).
    done = cli("keys", "--user", "alice", "--key", str(key("alice")), node=node)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert [u["user"] for u in listing["users"]] == ["alice", "carol"], listing
    stats = listing["stats"]
    assert (stats["not_allowed"], stats["unknown_user"], stats["bad_signature"]) == (1, 2, 1), stats
    assert (stats["replayed"], stats["expired"], stats["future"]) == (1, 1, 1), stats
    assert (stats["bad_body"], stats["wrong_app"]) == (1, 1), stats
    assert stats["unsigned"] >= 2, stats
    done = cli("pubkey", "--json", "--user", "alice", "--key", str(key("alice")), node=node)
    assert done.returncode == 0 and json.loads(done.stdout)["bits"] == 3072, done.stdout
    client.close()
    open_client.close()
