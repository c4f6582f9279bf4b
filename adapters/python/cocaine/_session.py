"""Requests in a session for `cocaine.Client(..., session=True)` (docs/security.md, "Session
keys").

One signed open of the event `cocaine.session` (no body) gets the node's grant
`[1, session, wrapped_key, expires_ms]`: a 32-byte key sealed to the user's public key with
RSA-OAEP (SHA-256, MGF1-SHA-256, no label), which the user's private key opens. Later opens
carry `auth = {session, seq, app, body, mac}` with `mac` last: HMAC-SHA-256 under the session
key over the open encoded without `mac` (the frame's own bytes less its `mac` entry, one less
in the map's one-byte header), as a signature covers the open without `sig`.

`cryptography` does the unwrap; `hmac` and `hashlib` the MAC: an implementation independent of
the node's (Rust, `rsa` and `hmac` crates).
"""

import hashlib
import hmac
import itertools
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from . import protocol

OPEN = 3
SESSION_EVENT = "cocaine.session"

_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(),
                     label=None)
# Renew a session this long before the node ends it at most (and at most a quarter of its
# lifetime), so clocks a little apart do not make a request arrive after its end.
_MARGIN_MS = 30_000


def is_stale(error):
    """True for the node's refusal of a session it no longer has (expired, idle, dropped with
    its user's key, the node restarted): a new session may succeed, and nothing ran."""
    return getattr(error, "code", None) == 401 and \
        getattr(error, "message", None) in ("unknown session", "session expired")


class Sessions:
    """The session a signing client uses: opened with `signing` (user, key, app)."""

    def __init__(self, signing):
        self._signing = signing
        self.session = None  # (id, key, expires_ms, margin_ms)
        self._seq = itertools.count(1)

    def needs_open(self):
        if self.session is None:
            return True
        _, _, expires_ms, margin = self.session
        return _now_ms() + margin >= expires_ms

    def opening(self, sid):
        """The signed session-open of request `sid` (send it with its end)."""
        return self._signing.open(sid, SESSION_EVENT, {}, [])

    def granted(self, body):
        """Takes the node's grant: the session id, its key unwrapped, when it ends."""
        grant = protocol.unpack(body)
        if not (isinstance(grant, list) and len(grant) == 4 and grant[0] == 1):
            raise ValueError("not a session grant: %r" % (grant,))
        _, session, wrapped, expires_ms = grant
        if not (isinstance(session, bytes) and len(session) == 16 and isinstance(wrapped, bytes)
                and isinstance(expires_ms, int)):
            raise ValueError("not a session grant: %r" % (grant,))
        key = self._signing._key.decrypt(wrapped, _OAEP)
        if len(key) != 32:
            raise ValueError("a session key of %d bytes, not 32" % len(key))
        lifetime = max(0, expires_ms - _now_ms())
        self.session = (session, key, expires_ms, min(_MARGIN_MS, lifetime // 4))
        self._seq = itertools.count(1)

    def forget(self):
        self.session = None

    def open(self, sid, event, policy, chunks):
        """The open of request `sid` in the session, whose whole body is `chunks`."""
        session, key = self.session[0], self.session[1]
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        auth = {"session": session, "seq": next(self._seq), "app": self._signing.app,
                "body": digest.digest()}
        maced = protocol.pack([OPEN, sid, event, policy, auth])
        auth["mac"] = hmac.new(key, maced, hashlib.sha256).digest()
        return protocol.pack([OPEN, sid, event, policy, auth])


def _now_ms():
    return int(time.time() * 1000)
