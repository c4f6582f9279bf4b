"""A small built-in MessagePack codec, used when the `msgpack` package is not installed.

The worker channel needs only a subset of MessagePack: nil, bool, integers, str, bin, array
and map. This module encodes and decodes exactly that subset and rejects everything else
(floats, ext types, timestamps...) with an error naming what it met, so that an SDK without
third-party packages still speaks the same bytes as one with them.

Encoding follows the `msgpack` package with `use_bin_type=True` byte for byte: every integer
and every length takes its smallest encoding, non-negative integers use the unsigned forms,
`str` is UTF-8 `str` and `bytes`-like values are `bin`. Decoding accepts any valid encoding of
the subset (a small number written as u64 decodes fine), as the Rust node's reader does.
"""

import struct

__all__ = ["MsgpackError", "packb", "unpackb"]

# Nesting deeper than this is refused rather than risking Python's recursion limit; protocol
# messages are two levels deep at most.
MAX_DEPTH = 64

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class MsgpackError(ValueError):
    """A value cannot be encoded, or bytes are not a message of the supported subset."""


# ---------------------------------------------------------------------------------------------
# Encoding


def packb(obj):
    """Encodes `obj` (None, bool, int, str, bytes-like, list/tuple, dict) as MessagePack bytes."""
    out = bytearray()
    _pack(obj, out, 0)
    return bytes(out)


def _pack(obj, out, depth):
    if depth > MAX_DEPTH:
        raise MsgpackError("nesting deeper than %d levels" % MAX_DEPTH)
    if obj is None:
        out.append(0xC0)
    elif obj is True:
        out.append(0xC3)
    elif obj is False:
        out.append(0xC2)
    elif isinstance(obj, int):
        _pack_int(obj, out)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        _pack_len(len(data), out, fix=(0xA0, 32), small=0xD9, medium=0xDA, large=0xDB)
        out += data
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        _pack_len(len(data), out, fix=None, small=0xC4, medium=0xC5, large=0xC6)
        out += data
    elif isinstance(obj, (list, tuple)):
        _pack_len(len(obj), out, fix=(0x90, 16), small=None, medium=0xDC, large=0xDD)
        for item in obj:
            _pack(item, out, depth + 1)
    elif isinstance(obj, dict):
        _pack_len(len(obj), out, fix=(0x80, 16), small=None, medium=0xDE, large=0xDF)
        for key, value in obj.items():
            _pack(key, out, depth + 1)
            _pack(value, out, depth + 1)
    else:
        raise MsgpackError("cannot encode a value of type %s" % type(obj).__name__)


def _pack_int(n, out):
    if 0 <= n < 0x80:
        out.append(n)
    elif n >= 0:
        if n <= 0xFF:
            out.append(0xCC)
            out += _U8.pack(n)
        elif n <= 0xFFFF:
            out.append(0xCD)
            out += _U16.pack(n)
        elif n <= 0xFFFFFFFF:
            out.append(0xCE)
            out += _U32.pack(n)
        elif n <= 0xFFFFFFFFFFFFFFFF:
            out.append(0xCF)
            out += _U64.pack(n)
        else:
            raise MsgpackError("integer %d does not fit in 64 bits" % n)
    elif n >= -32:
        out.append(n & 0xFF)
    elif n >= -0x80:
        out.append(0xD0)
        out += _I8.pack(n)
    elif n >= -0x8000:
        out.append(0xD1)
        out += _I16.pack(n)
    elif n >= -0x80000000:
        out.append(0xD2)
        out += _I32.pack(n)
    elif n >= -0x8000000000000000:
        out.append(0xD3)
        out += _I64.pack(n)
    else:
        raise MsgpackError("integer %d does not fit in 64 bits" % n)


def _pack_len(n, out, fix, small, medium, large):
    """Writes a str/bin/array/map header in its smallest form (`None` = form not available)."""
    if fix is not None and n < fix[1]:
        out.append(fix[0] | n)
    elif small is not None and n <= 0xFF:
        out.append(small)
        out += _U8.pack(n)
    elif n <= 0xFFFF:
        out.append(medium)
        out += _U16.pack(n)
    elif n <= 0xFFFFFFFF:
        out.append(large)
        out += _U32.pack(n)
    else:
        raise MsgpackError("length %d does not fit in 32 bits" % n)


# ---------------------------------------------------------------------------------------------
# Decoding


def unpackb(data):
    """Decodes exactly one value from `data`; trailing bytes are an error.

    str becomes `str` (must be valid UTF-8), bin becomes `bytes`, arrays become lists and maps
    dicts.
    """
    reader = _Reader(bytes(data))
    value = reader.value(0)
    if reader.pos != len(reader.data):
        raise MsgpackError("%d trailing bytes after the value" % (len(reader.data) - reader.pos))
    return value


class _Reader:
    """A cursor over the input; each method consumes what it reads."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        end = self.pos + n
        if end > len(self.data):
            raise MsgpackError("truncated input: needed %d more bytes" % (end - len(self.data)))
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def number(self, fmt):
        return fmt.unpack(self.take(fmt.size))[0]

    def value(self, depth):
        if depth > MAX_DEPTH:
            raise MsgpackError("nesting deeper than %d levels" % MAX_DEPTH)
        marker = self.number(_U8)
        if marker <= 0x7F:
            return marker
        if marker >= 0xE0:
            return marker - 0x100
        if 0xA0 <= marker <= 0xBF:
            return self.text(marker & 0x1F)
        if 0x90 <= marker <= 0x9F:
            return self.array(marker & 0x0F, depth)
        if 0x80 <= marker <= 0x8F:
            return self.map(marker & 0x0F, depth)
        handler = _MARKERS.get(marker)
        if handler is None:
            raise MsgpackError("unsupported msgpack type 0x%02x (%s)"
                               % (marker, _UNSUPPORTED.get(marker, "reserved")))
        return handler(self, depth)

    def text(self, n):
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MsgpackError("str is not valid UTF-8: %s" % e) from None

    def array(self, n, depth):
        return [self.value(depth + 1) for _ in range(n)]

    def map(self, n, depth):
        result = {}
        for _ in range(n):
            key = self.value(depth + 1)
            try:
                hash(key)
            except TypeError:
                raise MsgpackError("map key of type %s" % type(key).__name__) from None
            result[key] = self.value(depth + 1)
        return result


_MARKERS = {
    0xC0: lambda r, d: None,
    0xC2: lambda r, d: False,
    0xC3: lambda r, d: True,
    0xC4: lambda r, d: r.take(r.number(_U8)),
    0xC5: lambda r, d: r.take(r.number(_U16)),
    0xC6: lambda r, d: r.take(r.number(_U32)),
    0xCC: lambda r, d: r.number(_U8),
    0xCD: lambda r, d: r.number(_U16),
    0xCE: lambda r, d: r.number(_U32),
    0xCF: lambda r, d: r.number(_U64),
    0xD0: lambda r, d: r.number(_I8),
    0xD1: lambda r, d: r.number(_I16),
    0xD2: lambda r, d: r.number(_I32),
    0xD3: lambda r, d: r.number(_I64),
    0xD9: lambda r, d: r.text(r.number(_U8)),
    0xDA: lambda r, d: r.text(r.number(_U16)),
    0xDB: lambda r, d: r.text(r.number(_U32)),
    0xDC: lambda r, d: r.array(r.number(_U16), d),
    0xDD: lambda r, d: r.array(r.number(_U32), d),
    0xDE: lambda r, d: r.map(r.number(_U16), d),
    0xDF: lambda r, d: r.map(r.number(_U32), d),
}

_UNSUPPORTED = {
    0xC1: "never used",
    0xC7: "ext 8", 0xC8: "ext 16", 0xC9: "ext 32",
    0xCA: "float 32", 0xCB: "float 64",
    0xD4: "fixext 1", 0xD5: "fixext 2", 0xD6: "fixext 4", 0xD7: "fixext 8", 0xD8: "fixext 16",
}
