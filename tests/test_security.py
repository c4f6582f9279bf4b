"""Signed control requests end to end (docs/security.md): a node with `--auth required` and a
`--keys` folder, requests signed with the `openssl` command line (RSA-PSS, SHA-256, 32-byte
salt) over pyzmq: signed OK, unsigned 401, unknown user 401, replay 401, tampered 401, a key
removed while the node runs 401, and the node keeps serving."""

import json
import os
import subprocess
import time
from pathlib import Path

import zmq

from control import cnode  # noqa: F401 (a fixture)

KEYS = Path(__file__).resolve().parent.parent / "core" / "tests" / "data" / "auth"


def ask(address, frames):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.connect(address)
    try:
        s.send_multipart(frames)
        return json.loads(s.recv())
    finally:
        s.close()


def signed(tmp_path, user, nonce, key, action="keys", ts=None):
    body = {"version": 1, "action": action, "user": user,
            "ts": int(time.time() * 1000) if ts is None else ts, "nonce": nonce}
    data = json.dumps(body, separators=(",", ":")).encode()
    request, sig = tmp_path / "req.json", tmp_path / "req.sig"
    request.write_bytes(data)
    subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key),
                    "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                    "-sigopt", "rsa_mgf1_md:sha256", "-out", str(sig), str(request)], check=True)
    return [data, sig.read_bytes()]


def code(reply):
    return reply.get("error", {}).get("code", 200)


def test_signed_control_requests(cnode, tmp_path):  # noqa: F811
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "alice.pem").write_bytes((KEYS / "alice.pem").read_bytes())
    node = cnode(extra_args=["--auth", "required", "--keys", str(keys)])
    alice, bob = KEYS / "alice.key", KEYS / "bob.key"

    reply = ask(node.control, [b'{"version":1,"action":"list"}'])
    assert code(reply) == 401 and "requires a signed request" in reply["error"]["message"]

    good = signed(tmp_path, "alice", "e2e-nonce-000000001", alice)
    reply = ask(node.control, good)
    assert code(reply) == 200, reply
    assert [u["user"] for u in reply["ok"]["users"]] == ["alice"]

    reply = ask(node.control, good)
    assert code(reply) == 401 and reply["error"]["message"].startswith("replayed"), reply

    reply = ask(node.control, signed(tmp_path, "bob", "e2e-nonce-000000002", bob))
    assert code(reply) == 401 and "unknown user" in reply["error"]["message"], reply

    forged = signed(tmp_path, "alice", "e2e-nonce-000000003", bob)
    reply = ask(node.control, forged)
    assert code(reply) == 401 and reply["error"]["message"].startswith("bad signature"), reply

    old = signed(tmp_path, "alice", "e2e-nonce-000000004", alice, ts=int(time.time() * 1000) - 60000)
    reply = ask(node.control, old)
    assert code(reply) == 401 and reply["error"]["message"].startswith("expired"), reply

    # Bob's key arrives while the node runs: Bob is served.
    (keys / "bob.pem").write_bytes((KEYS / "bob.pem").read_bytes())
    node.wait_for_log(r'key of "bob" set', 10)
    reply = ask(node.control, signed(tmp_path, "bob", "e2e-nonce-000000005", bob))
    assert code(reply) == 200, reply

    # Alice's key is removed while the node runs: Alice is refused, Bob still served.
    os.remove(keys / "alice.pem")
    node.wait_for_log(r'key of "alice" removed', 10)
    reply = ask(node.control, signed(tmp_path, "alice", "e2e-nonce-000000006", alice))
    assert code(reply) == 401 and "unknown user" in reply["error"]["message"], reply
    reply = ask(node.control, signed(tmp_path, "bob", "e2e-nonce-000000007", bob))
    assert code(reply) == 200, reply
    stats = reply["ok"]["stats"]
    assert stats["accepted"] == 2 + 1 and stats["replayed"] == 1 and stats["unsigned"] == 1, stats
    assert stats["unknown_user"] == 2 and stats["bad_signature"] == 1 and stats["expired"] == 1, stats
