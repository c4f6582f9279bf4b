"""Hand-written encoders and decoders for the messages of every job: the hot path.

A request is `[3, sid, event, meta]`, `[4, sid, data]`..., `[5, sid]`, and its reply
`[4, sid, data]`..., `[5, sid]`. Building and reading those few shapes byte by byte costs a
fraction of a general msgpack call (and needs no package), so the worker does that and leaves
everything else to the codec in protocol.py.

Encoders produce the same bytes as `msgpack.packb(..., use_bin_type=True)`: every integer and
length in its smallest form. Decoders return None for any body that is not exactly the simple
shape they know (a sid written in a wider form than needed is fine; anything else, including
trailing bytes, is None), and the caller falls back to the general, checking decoder, which
then accepts it or names what is wrong.
"""

import struct

__all__ = ["chunk_frame", "sid_frame", "read_hot", "read_invoke"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_LENGTH = _U32


def _uint(n):
    """`n` (0 <= n < 2**64) as a msgpack unsigned integer."""
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0xCC, n))
    if n <= 0xFFFF:
        return b"\xcd" + _U16.pack(n)
    if n <= 0xFFFFFFFF:
        return b"\xce" + _U32.pack(n)
    return b"\xcf" + _U64.pack(n)


def _bin_head(n):
    if n <= 0xFF:
        return bytes((0xC4, n))
    if n <= 0xFFFF:
        return b"\xc5" + _U16.pack(n)
    return b"\xc6" + _U32.pack(n)


def chunk_frame(sid, data):
    """The whole frame (length prefix included) of `[4, sid, data]`, `data` bytes."""
    head = b"\x93\x04" + _uint(sid) + _bin_head(len(data))
    return _LENGTH.pack(len(head) + len(data)) + head + data


def sid_frame(kind, sid):
    """The whole frame of `[kind, sid]` (a choke, 5, from a worker)."""
    body = bytes((0x92, kind)) + _uint(sid)
    return _LENGTH.pack(len(body)) + body


# Reading. Each reader takes a frame body (bytes) and gives the message's fields, or None.

_UINT_WIDTH = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}


def _read_uint(body, pos):
    """(value, next position) of the unsigned integer at `pos`, or None."""
    marker = body[pos]
    if marker < 0x80:
        return marker, pos + 1
    width = _UINT_WIDTH.get(marker)
    if width is None:
        return None
    end = pos + 1 + width
    if end > len(body):
        return None
    return int.from_bytes(body[pos + 1:end], "big"), end


def _read_str(body, pos):
    """(str, next position) of the UTF-8 str at `pos`, or None."""
    marker = body[pos]
    if 0xA0 <= marker <= 0xBF:
        start, n = pos + 1, marker & 0x1F
    elif marker == 0xD9 and pos + 1 < len(body):
        start, n = pos + 2, body[pos + 1]
    else:
        return None
    end = start + n
    if end > len(body):
        return None
    try:
        return body[start:end].decode("utf-8"), end
    except UnicodeDecodeError:
        return None


def read_hot(body):
    """`(kind, sid, payload)` of a job's message from the node, or None for anything else:
    `[4, sid, bin data]` gives the data, `[5, sid]` and `[7, sid]` None, and an invoke
    `[3, sid, event, meta]` (see read_invoke) `(event, meta)`."""
    size = len(body)
    if size < 3:
        return None
    first, kind, marker = body[0], body[1], body[2]
    if marker < 0x80:  # the sid as a positive fixint: the usual case, read inline
        sid, pos = marker, 3
    else:
        read = _read_uint(body, 2)
        if read is None:
            return None
        sid, pos = read
    if first == 0x92:
        return (kind, sid, None) if (kind == 5 or kind == 7) and pos == size else None
    if first == 0x93 and kind == 4 and pos < size:
        return _read_chunk_data(body, sid, pos, size)
    if first == 0x94 and kind == 3:
        invoke = read_invoke(body)
        return None if invoke is None else (3, invoke[0], invoke[1:])
    return None


def _read_chunk_data(body, sid, pos, size):
    marker = body[pos]
    if marker == 0xC4 and pos + 1 < size:
        start, n = pos + 2, body[pos + 1]
    elif marker == 0xC5 and pos + 3 <= size:
        start, n = pos + 3, _U16.unpack_from(body, pos + 1)[0]
    elif marker == 0xC6 and pos + 5 <= size:
        start, n = pos + 5, _U32.unpack_from(body, pos + 1)[0]
    else:
        return None
    if start + n != size:
        return None
    return 4, sid, body[start:]


_CONSTANTS = {0xC0: None, 0xC2: False, 0xC3: True}

# How deep a meta value may nest before the reader leaves it to the general decoder: the
# node's deepest is 3 (meta -> http -> headers -> one header).
_MAX_DEPTH = 6


def _read_value(body, pos, depth):
    """(value, next position) of the meta value at `pos`: nil, bools, unsigned integers,
    strs, and maps with str keys and arrays of those (an http-server job's `http` entry),
    or None. Raises IndexError for a cut body and UnicodeDecodeError for a str that is not
    UTF-8; read_invoke takes either as "not for the fast path"."""
    marker = body[pos]
    if 0xA0 <= marker <= 0xBF:  # fixstr, the most common value: read inline
        end = pos + 1 + (marker & 0x1F)
        if end > len(body):
            return None
        return body[pos + 1:end].decode("utf-8"), end
    if marker == 0xD9 or marker == 0xDA:
        start, n = (pos + 2, body[pos + 1]) if marker == 0xD9 else \
            (pos + 3, _U16.unpack_from(body, pos + 1)[0])
        end = start + n
        if end > len(body):
            return None
        return body[start:end].decode("utf-8"), end
    if marker in _CONSTANTS:
        return _CONSTANTS[marker], pos + 1
    if depth >= _MAX_DEPTH:
        return None
    if 0x80 <= marker <= 0x8F or marker == 0xDE:
        return _read_map(body, pos, depth + 1)
    if 0x90 <= marker <= 0x9F or marker == 0xDC:
        return _read_array(body, pos, depth + 1)
    return _read_uint(body, pos)


def _count(body, pos, small):
    """(element count, position of the first element) of the map or array at `pos`, whose
    fix form has marker `small`; the 16-bit form otherwise."""
    marker = body[pos]
    if marker & 0xF0 == small:
        return marker & 0x0F, pos + 1
    return _U16.unpack_from(body, pos + 1)[0], pos + 3


def _read_map(body, pos, depth):
    n, pos = _count(body, pos, 0x80)
    result = {}
    for _ in range(n):
        marker = body[pos]
        if 0xA0 <= marker <= 0xBF:  # a fixstr key, as every key the node sends
            end = pos + 1 + (marker & 0x1F)
            if end > len(body):
                return None
            key, pos = body[pos + 1:end].decode("utf-8"), end
        else:
            key, pos = _read_str(body, pos)
        result[key], pos = _read_value(body, pos, depth)
    return result, pos


def _read_array(body, pos, depth):
    n, pos = _count(body, pos, 0x90)
    result = []
    for _ in range(n):
        value, pos = _read_value(body, pos, depth)
        result.append(value)
    return result, pos


def read_invoke(body):
    """`(sid, event, meta)` of `[3, sid, event, meta]` whose meta is a map of str keys to the
    values `_read_value` knows (what the node sends), or None."""
    if len(body) < 5 or body[0] != 0x94 or body[1] != 3:
        return None
    try:
        sid, pos = _read_uint(body, 2)
        event, pos = _read_str(body, pos)
        if body[pos] & 0xF0 != 0x80:
            return None
        meta, pos = _read_map(body, pos, 0)
    # A None from a reader, a cut body (struct.error from a 16-bit count or length cut in
    # two), or a str that is not UTF-8.
    except (TypeError, IndexError, UnicodeDecodeError, struct.error):
        return None
    if pos != len(body):
        return None
    return sid, event, meta
