"""The Python package's client, `cocaine.Client`, signing its requests with the `cryptography`
package (an implementation independent of the node's), on every runtime: keys made by `cocaine
keygen`, a node with a key folder and an app whose task requires signatures from listed users.
Signed calls and streams run and the handler sees the user; an unsigned client, an unknown
user, the wrong key, another app's name and an unlisted user are refused with their codes, and
the app's own count of calls proves no refused request reached the worker. The signed bytes are
checked with the openssl command line too, under both of the package's msgpack codecs."""

import json
import os
import subprocess
import sys

import msgpack
import pytest

from conftest import PYTHON_SDK, endpoint
from control import cnode  # noqa: F401 (a fixture)
from test_security_native import APP, keygen, manifest, openssl

sys.path.insert(0, str(PYTHON_SDK))
from cocaine import _msgpack  # noqa: E402  (the SDK from this source tree)
from cocaine.client import CallError, Client  # noqa: E402

TIMEOUT = 20.0


@pytest.fixture
def keys(tmp_path):
    """Private keys in `own/` for alice, carol and dave; the node's folder has alice's and
    carol's public keys (the task lists alice and bob), not dave's."""
    own, given = tmp_path / "own", tmp_path / "keys"
    own.mkdir()
    given.mkdir()
    for name in ["alice", "carol", "dave"]:
        keygen(own, name, bits=2048)
    for name in ["alice", "carol"]:
        (given / ("%s.pem" % name)).write_bytes((own / ("%s.pem" % name)).read_bytes())
    return own, given


def refused(client, code, text, body=b"x"):
    with pytest.raises(CallError) as failed:
        client.call("whoami", body)
    assert failed.value.code == code and text in failed.value.message, failed.value
    client.close()


def test_signed_calls_from_the_python_client(cnode, keys):  # noqa: F811
    own, given = keys
    secure, open_ = endpoint(), endpoint()
    node = cnode(manifests={APP: manifest(secure, open_)}, extra_args=["--keys", str(given)])

    def signed(user, key=None, app=APP):
        return Client(secure, timeout=TIMEOUT, user=user, key=key or own / ("%s.key" % user),
                      app=app)

    # A signed call runs; the handler sees the user.
    with signed("alice") as client:
        reply = json.loads(client.call("whoami", b"hello"))
        assert reply == {"user": "alice", "body": "hello", "calls": 1}, reply
        # A stream is held until its end, then signed over its whole body.
        request = client.request("whoami")
        request.write(b"one ")
        request.write("two")
        with pytest.raises(RuntimeError):
            next(request.chunks())
        request.end()
        reply = json.loads(request.result())
        assert reply == {"user": "alice", "body": "one two", "calls": 2}, reply
        # Cancelled before its end, a signed request never left the client.
        dropped = client.request("whoami")
        dropped.write(b"never sent")
        dropped.cancel()
        with pytest.raises(CallError) as failed:
            dropped.result()
        assert failed.value.code == 499
        assert client.connection_errors == []
    accepted = 2

    # A key already loaded with `cryptography` signs the same way.
    from cryptography.hazmat.primitives import serialization
    loaded = serialization.load_pem_private_key((own / "alice.key").read_bytes(), password=None)
    with Client(secure, timeout=TIMEOUT, user="alice", key=loaded, app=APP) as client:
        reply = json.loads(client.call("whoami", b"loaded"))
        assert reply == {"user": "alice", "body": "loaded", "calls": accepted + 1}, reply
    accepted += 1

    # Refusals, each with its code, before any worker sees them.
    refused(Client(secure, timeout=TIMEOUT), 401, "requires a signed request")
    refused(signed("dave"), 401, 'unknown user "dave"')
    refused(signed("alice", key=own / "carol.key"), 401, 'bad signature for user "alice"')
    refused(signed("alice", app="other"), 401, 'signed for app "other"')
    refused(signed("carol"), 403, 'user "carol" may not call this task')

    with Client(open_, timeout=TIMEOUT) as client:
        assert client.call("calls") == str(accepted).encode()
    assert node.proc.poll() is None


def test_signed_open_bytes_verify_with_openssl(keys, tmp_path):
    """The frame's signature covers the frame less its `sig` entry, and the built-in codec
    writes the same bytes as the msgpack package, so either codec signs what the node reads."""
    own, _ = keys
    from cocaine._signing import Signing
    signing = Signing("alice", own / "alice.key", APP)
    chunks = [b"pay ", b"10"]
    frame = signing.open(7, "whoami", {"timeout": 1500, "urgent": True}, chunks)
    message = msgpack.unpackb(frame, raw=False)
    auth = message[4]
    assert message[:4] == [3, 7, "whoami", {"timeout": 1500, "urgent": True}]
    assert list(auth) == ["user", "ts", "nonce", "app", "body", "sig"]
    assert (auth["user"], auth["app"]) == ("alice", APP)
    assert len(auth["nonce"]) == 48 and len(auth["body"]) == 32
    sig = auth.pop("sig")
    signed = msgpack.packb(message, use_bin_type=True)
    assert _msgpack.packb(message) == signed
    # The frame is the signed bytes with the map one key longer and `sig` appended.
    tail = msgpack.packb(auth, use_bin_type=True)
    assert tail[0] == 0x85 and signed.endswith(tail)
    assert frame == (signed[:-len(tail)] + b"\x86" + tail[1:]
                     + msgpack.packb("sig") + msgpack.packb(sig, use_bin_type=True))
    (tmp_path / "open.bin").write_bytes(signed)
    (tmp_path / "open.sig").write_bytes(sig)
    openssl("pkey", "-in", str(own / "alice.key"), "-pubout", "-out", str(tmp_path / "a.pem"))
    out = openssl("dgst", "-sha256", "-verify", str(tmp_path / "a.pem"), "-sigopt",
                  "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-sigopt",
                  "rsa_mgf1_md:sha256", "-signature", str(tmp_path / "open.sig"),
                  str(tmp_path / "open.bin"))
    assert b"Verified OK" in out
    # Nonces never repeat within a client.
    again = msgpack.unpackb(signing.open(8, "whoami", {}, chunks), raw=False)[4]
    assert again["nonce"] != auth["nonce"]


def test_cryptography_is_imported_only_to_sign():
    script = ("import sys; from cocaine.client import Client; Client('tcp://127.0.0.1:1').close();"
              " print('cryptography' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=str(PYTHON_SDK),
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done


def test_bad_signing_arguments_are_refused(keys, tmp_path):
    own, _ = keys
    key = own / "alice.key"
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1", user="alice", key=key)  # no app
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1", user="alice", app=APP)  # no key
    readable = tmp_path / "readable.key"
    readable.write_bytes(key.read_bytes())
    os.chmod(readable, 0o644)
    with pytest.raises(PermissionError, match="other users may read"):
        Client("tcp://127.0.0.1:1", user="alice", key=readable, app=APP)
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    os.chmod(garbage, 0o600)
    with pytest.raises(ValueError):
        Client("tcp://127.0.0.1:1", user="alice", key=garbage, app=APP)
    from cryptography.hazmat.primitives.asymmetric import ec
    with pytest.raises(TypeError, match="RSA private key"):
        Client("tcp://127.0.0.1:1", user="alice", key=ec.generate_private_key(ec.SECP256R1()),
               app=APP)
