"""The worker channel of docs/protocol.md §1: message kinds, framing and the msgpack codec.

Every frame is a u32 big-endian length followed by that many bytes of msgpack, and every
message is an array whose first element is its kind. This module turns Python lists into
frames, cuts a byte stream back into frame bodies, and checks that what the node sent has the
shape the protocol gives it, so the rest of the SDK only ever sees well-formed messages.
"""

import os
import struct

from . import _msgpack, _wire

HANDSHAKE = 1
HEARTBEAT = 2
INVOKE = 3
CHUNK = 4
CHOKE = 5
ERROR = 6
CANCEL = 7
TERMINATE = 8
HEAD = 9

PROTOCOL_VERSION = 1

# The node's default `max-message`: a frame body longer than this makes the node drop the
# worker, so the SDK refuses to send one (see Channel.encode_reply).
DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024

_LENGTH = struct.Struct(">I")


class ProtocolError(ValueError):
    """A frame body that is not a valid node -> worker message."""


def _select_codec():
    """Picks the `msgpack` package when importable, else the built-in codec.

    `COCAINE_NO_MSGPACK` set to anything but "" or "0" forces the built-in codec, so the
    fallback path can be exercised on machines that have the package.
    """
    if os.environ.get("COCAINE_NO_MSGPACK", "") not in ("", "0"):
        return "builtin", _msgpack.packb, _msgpack.unpackb
    try:
        import msgpack
    except ImportError:
        return "builtin", _msgpack.packb, _msgpack.unpackb

    def pack(obj):
        return msgpack.packb(obj, use_bin_type=True)

    def unpack(data):
        return msgpack.unpackb(data, raw=False)

    return "msgpack", pack, unpack


def _use_codec():
    global CODEC, pack, unpack
    CODEC, pack, unpack = _select_codec()


# The codec is picked on first use: the `msgpack` package costs a worker's start ~6 ms of
# imports (with the `datetime` it loads), and a worker's handshake and every job's usual
# frames are built and read without it.
def pack(obj):
    _use_codec()
    return pack(obj)


def unpack(data):
    _use_codec()
    return unpack(data)


def __getattr__(name):
    if name == "CODEC":
        _use_codec()
        return CODEC
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


# `[2]` framed: the heartbeat, the same bytes from either codec.
HEARTBEAT_FRAME = b"\x00\x00\x00\x02\x91\x02"


def handshake_frame(worker_id, pid):
    """The frame of `[1, worker_id, PROTOCOL_VERSION, pid]`, by the built-in codec (the same
    bytes as the package's), so a worker handshakes before the package is imported."""
    body = _msgpack.packb([HANDSHAKE, worker_id, PROTOCOL_VERSION, pid])
    return _LENGTH.pack(len(body)) + body


# The frames of every job's reply, built without the codec (same bytes).
chunk_frame = _wire.chunk_frame


def choke_frame(sid):
    """The frame of `[5, sid]`."""
    return _wire.sid_frame(CHOKE, sid)


def encode(message):
    """Returns the whole frame (length prefix and body) for `message`, a list."""
    body = pack(message)
    if len(body) > 0xFFFFFFFF:
        raise ValueError("a message of %d bytes does not fit a frame" % len(body))
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Cuts a byte stream, fed in arbitrary pieces, into frame bodies.

    There is no size limit here: the node enforces its own `max-message` on what it sends,
    and a frame is only buffered as fast as its bytes arrive. A read that holds whole frames
    (the usual case) is cut without copying it first; only a partial frame is kept, and a
    large one is not re-scanned until enough bytes for it have arrived.
    """

    def __init__(self):
        self._buf = bytearray()
        self._needed = 0  # bytes `_buf` must hold before a frame can be complete

    def feed(self, data):
        """Appends bytes read from the socket."""
        self._buf += data

    def frames(self):
        """Every complete frame body buffered so far, as a list of bytes."""
        buf = self._buf
        if len(buf) < self._needed or len(buf) < _LENGTH.size:
            return []
        with memoryview(buf) as view:
            bodies, used = cut_frames(view)
        if used:
            del buf[:used]
        self._needed = _LENGTH.size + _LENGTH.unpack_from(buf)[0] if len(buf) >= 4 else 0
        return bodies

    def frames_of(self, data):
        """`feed(data)` then `frames()`, without copying `data` when nothing is buffered."""
        if self._buf:
            self._buf += data
            return self.frames()
        bodies, used = cut_frames(data)
        if used < len(data):
            self._buf += data[used:]
            self._needed = (_LENGTH.size + _LENGTH.unpack_from(self._buf)[0]
                            if len(self._buf) >= 4 else 0)
        return bodies

    def pending(self):
        """Whether part of a frame is buffered: EOF now would cut a frame in two."""
        return len(self._buf) > 0


def cut_frames(data):
    """`(bodies, used)`: the complete frame bodies at the start of `data` (as bytes) and how
    many bytes of `data` they took."""
    bodies = []
    pos, size, unpack_from = 0, len(data), _LENGTH.unpack_from
    while size - pos >= 4:
        end = pos + 4 + unpack_from(data, pos)[0]
        if end > size:
            break
        bodies.append(bytes(data[pos + 4:end]))
        pos = end
    return bodies, pos


def _uint(value, field):
    if type(value) is not int or value < 0 or value > 0xFFFFFFFFFFFFFFFF:
        raise ProtocolError("%s must be an unsigned integer, got %r" % (field, value))
    return value


def _str(value, field):
    if not isinstance(value, str):
        raise ProtocolError("%s must be a string, got %s" % (field, type(value).__name__))
    return value


def _bytes(value, field):
    # The node sends bin; str is accepted too, as the node itself does, for peers that only
    # have strings.
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ProtocolError("%s must be binary, got %s" % (field, type(value).__name__))


def _map(value, field):
    if not isinstance(value, dict):
        raise ProtocolError("%s must be a map, got %s" % (field, type(value).__name__))
    return value


# kind -> (name, field checkers) for every message the node may send.
_FROM_NODE = {
    HEARTBEAT: ("heartbeat", ()),
    INVOKE: ("invoke", ((_uint, "sid"), (_str, "event"), (_map, "meta"))),
    CHUNK: ("chunk", ((_uint, "sid"), (_bytes, "data"))),
    CHOKE: ("choke", ((_uint, "sid"),)),
    CANCEL: ("cancel", ((_uint, "sid"),)),
    TERMINATE: ("terminate", ((_str, "reason"),)),
}


def parse(body):
    """Decodes and checks one frame body from the node.

    Returns `(kind, args)` with `args` a tuple of the checked fields; raises ProtocolError
    naming what was wrong otherwise.
    """
    fast = _parse_fast(body)
    if fast is not None:
        return fast
    message = _unpack_or_raise(body, "message")
    if not isinstance(message, (list, tuple)):
        raise ProtocolError("message is not an array but %s" % type(message).__name__)
    if not message:
        raise ProtocolError("message is an empty array")
    kind = message[0]
    if type(kind) is not int:
        raise ProtocolError("message kind is not an integer: %r" % (kind,))
    if kind not in _FROM_NODE:
        if kind in (HANDSHAKE, ERROR):
            raise ProtocolError("message kind %d is never sent by the node" % kind)
        raise ProtocolError("unknown message kind %d" % kind)
    name, fields = _FROM_NODE[kind]
    if len(message) != len(fields) + 1:
        raise ProtocolError("%s message has %d elements, expected %d"
                            % (name, len(message), len(fields) + 1))
    args = tuple(check(value, "%s.%s" % (name, field))
                 for (check, field), value in zip(fields, message[1:]))
    return kind, args


def decode_meta(meta_raw):
    """An invoke's meta map from its msgpack bytes (kept undecoded by the worker until a
    handler asks for it: see _wire.read_job); raises ProtocolError if it is not a map."""
    meta = _wire.read_meta(meta_raw)
    if meta is not None:
        return meta
    return _map(_unpack_or_raise(meta_raw, "invoke meta"), "invoke.meta")


def _unpack_or_raise(raw, what):
    """msgpack bytes decoded, or ProtocolError("undecodable WHAT: ...")."""
    try:
        return unpack(raw)
    except Exception as e:  # each codec raises its own types; all mean "not msgpack"
        raise ProtocolError("undecodable %s: %s: %s" % (what, type(e).__name__, e)) from None


def _parse_fast(body):
    """`parse` for the shapes of every job's messages, read by hand (see _wire.py); None for
    anything else, which the general decoder then accepts or rejects."""
    hot = _wire.read_hot(body)
    if hot is None:
        return (HEARTBEAT, ()) if body == b"\x91\x02" else None
    kind, sid, payload = hot
    if kind == INVOKE:
        return INVOKE, (sid,) + payload
    if kind == CHUNK:
        return CHUNK, (sid, payload)
    return kind, (sid,)
