"""Signed native opens for `cocaine.Client` (docs/security.md, "Signatures").

The open `[3, sid, event, policy, auth]` carries `auth = {user, ts, nonce, app, body, sig}`
with `sig` last; the signature (RSA-PSS, SHA-256, MGF1-SHA-256, a 32-byte salt) covers the
open encoded without `sig`. Since `auth` is the message's last element and a map of at most 15
keys, the signed bytes are the frame's own bytes less its `sig` entry, one less in the map's
one-byte header: the node checks exactly what was sent, never a re-encoding.

`cryptography` is imported here only, and this module only when a client is asked to sign.
"""

import hashlib
import itertools
import os
import stat
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import protocol

OPEN = 3

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class Signing:
    """Who signs (`user` and their RSA private key), for which `app`, and the nonces."""

    def __init__(self, user, key, app):
        if not user or not isinstance(user, str):
            raise ValueError("signing needs a user name")
        if not app or not isinstance(app, str):
            raise ValueError("a signed request names its app: pass app=")
        self.user = user
        self.app = app
        self._key = _private_key(key)
        # 32 random hex digits, then a counter: unique within this client and across clients.
        self._prefix = os.urandom(16).hex()
        self._counter = itertools.count(1)

    def sign(self, data):
        """The RSA-PSS/SHA-256 signature of `data` (a control request's JSON frame)."""
        return self._key.sign(data, _PSS, hashes.SHA256())

    def nonce(self):
        """A fresh nonce (a sealed body is bound to its request's nonce before it is signed)."""
        return "%s%016x" % (self._prefix, next(self._counter))

    def open(self, sid, event, policy, chunks, nonce=None):
        """The signed open frame of request `sid`, whose whole body is `chunks`."""
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        auth = {"user": self.user, "ts": int(time.time() * 1000),
                "nonce": nonce or self.nonce(),
                "app": self.app, "body": digest.digest()}
        signed = protocol.pack([OPEN, sid, event, policy, auth])
        auth["sig"] = self._key.sign(signed, _PSS, hashes.SHA256())
        return protocol.pack([OPEN, sid, event, policy, auth])


def _private_key(key):
    """An RSA private key: a `cryptography` key object, or the path of a PEM file (as written
    by `cocaine keygen`) that other users may not read, as ssh and the CLI's `--key` insist."""
    if isinstance(key, (str, bytes, os.PathLike)):
        path = os.fspath(key)
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            raise PermissionError("%s: a private key other users may read (mode %04o); chmod "
                                  "600 it" % (os.fsdecode(path), mode))
        with open(path, "rb") as file:
            key = serialization.load_pem_private_key(file.read(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("a signing key must be an RSA private key, not %s" % type(key).__name__)
    if not 2048 <= key.key_size <= 4096:
        raise ValueError("an RSA key of %d bits; nodes take 2048 to 4096" % key.key_size)
    return key
