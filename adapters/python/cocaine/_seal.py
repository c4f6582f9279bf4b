"""Sealed bodies for `cocaine.Client` (docs/security.md, "Sealed bodies").

A sealed request's body is `[1, wrapped_key, nonce, ciphertext]` (msgpack): a fresh
ChaCha20-Poly1305 key wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256, no label) for the node's
public key, a 12-byte nonce, and the body sealed with them. The associated data binds it to
the signing user, the app and the signed open's nonce. The node answers with one chunk sealed
the same way for the user's own key, bound as a reply to that nonce; it is opened here.

Written with `cryptography` only, from the documented format: an implementation independent of
the node's (RustCrypto and OpenSSL), so the end-to-end tests prove the two agree.
"""

import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

VERSION = 1
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class SealError(Exception):
    """A sealed reply that is malformed or does not open."""


def associated_data(direction, user, app, nonce):
    """`cocaine-seal/1 request` (or `reply`), then user, app and nonce, each as a 2-byte
    big-endian length and its bytes."""
    out = ("cocaine-seal/1 " + direction).encode()
    for field in (user.encode(), app.encode(), nonce if isinstance(nonce, bytes) else nonce.encode()):
        out += struct.pack(">H", len(field)) + field
    return out


def _bin(data):
    n = len(data)
    if n < 0x100:
        return b"\xc4" + bytes([n]) + data
    if n < 0x10000:
        return b"\xc5" + struct.pack(">H", n) + data
    return b"\xc6" + struct.pack(">I", n) + data


def encode(wrapped_key, nonce, ciphertext):
    return b"\x94" + bytes([VERSION]) + _bin(wrapped_key) + _bin(nonce) + _bin(ciphertext)


def decode(payload):
    """(wrapped_key, nonce, ciphertext) of a sealed payload, strictly."""
    if payload[:2] != b"\x94" + bytes([VERSION]):
        raise SealError("not a sealed payload of version 1")
    at, parts = 2, []
    for _ in range(3):
        marker = payload[at:at + 1]
        if marker == b"\xc4":
            size, at = payload[at + 1], at + 2
        elif marker == b"\xc5":
            size, at = struct.unpack(">H", payload[at + 1:at + 3])[0], at + 3
        elif marker == b"\xc6":
            size, at = struct.unpack(">I", payload[at + 1:at + 5])[0], at + 5
        else:
            raise SealError("not a sealed payload: a field is not binary")
        if at + size > len(payload):
            raise SealError("not a sealed payload: truncated")
        parts.append(payload[at:at + size])
        at += size
    if at != len(payload) or len(parts[1]) != 12 or len(parts[2]) < 16:
        raise SealError("not a sealed payload: bad sizes or trailing bytes")
    return parts


class Sealing:
    """Seals bodies for the node's public key and opens replies with the user's private key."""

    def __init__(self, node_key, user_key, user, app):
        self._node_key = _public_key(node_key)
        self._user_key = user_key
        self._user = user
        self._app = app

    def seal(self, nonce, body):
        key, iv = ChaCha20Poly1305.generate_key(), os.urandom(12)
        wrapped = self._node_key.encrypt(key, _OAEP)
        aad = associated_data("request", self._user, self._app, nonce)
        return encode(wrapped, iv, ChaCha20Poly1305(key).encrypt(iv, body, aad))

    def open(self, nonce, payload):
        wrapped, iv, ciphertext = decode(payload)
        try:
            key = self._user_key.decrypt(wrapped, _OAEP)
            aad = associated_data("reply", self._user, self._app, nonce)
            return ChaCha20Poly1305(key).decrypt(iv, ciphertext, aad)
        except Exception as error:  # cryptography's InvalidTag and ValueError alike
            raise SealError("the sealed reply does not open: %s" % (type(error).__name__,))


def _public_key(key):
    """The node's RSA public key: a `cryptography` key, PEM bytes or text, or a PEM file's
    path (its `node.pem`, or what `cocaine pubkey` prints)."""
    if isinstance(key, rsa.RSAPublicKey):
        return key
    if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        key = key.encode()
    if isinstance(key, bytes) and key.lstrip().startswith(b"-----BEGIN"):
        loaded = serialization.load_pem_public_key(key)
    elif isinstance(key, (str, bytes, os.PathLike)):
        with open(os.fspath(key), "rb") as file:
            loaded = serialization.load_pem_public_key(file.read())
    else:
        raise TypeError("node_key must be a PEM public key, its path, or an RSA public key")
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise TypeError("the node's key is not an RSA public key")
    return loaded
