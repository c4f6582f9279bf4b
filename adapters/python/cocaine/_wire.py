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

__all__ = ["chunk_frame", "sid_frame", "read_hot", "read_invoke", "read_job", "read_meta",
           "uint", "frame_parts", "one_chunk_reply"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_LENGTH = _U32


def uint(n):
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
    head = b"\x93\x04" + uint(sid) + _bin_head(len(data))
    return _LENGTH.pack(len(head) + len(data)) + head + data


def sid_frame(kind, sid):
    """The whole frame of `[kind, sid]` (a choke, 5, from a worker)."""
    body = bytes((0x92, kind)) + uint(sid)
    return _LENGTH.pack(len(body)) + body


def frame_parts(sid):
    """`(chunk head, choke frame)` for `sid`: the body's start of `[4, sid, data]` up to
    `data`'s bin header, and the whole frame of `[5, sid]`."""
    return _parts_of(uint(sid))


def _parts_of(sid_raw):
    """frame_parts for a sid already encoded as msgpack (`sid_raw`)."""
    return b"\x93\x04" + sid_raw, _LENGTH.pack(2 + len(sid_raw)) + b"\x92\x05" + sid_raw


_BIN8_HEADS = tuple(bytes((0xC4, n)) for n in range(256))


def one_chunk_reply(parts, data):
    """The frames of a reply of one chunk, `[4, sid, data]` then `[5, sid]`, as one bytes
    value; `parts` from frame_parts (or read_job) for the job's sid."""
    head, choke = parts
    n = len(data)
    bin_head = _BIN8_HEADS[n] if n <= 0xFF else _bin_head(n)
    return b"".join((_LENGTH.pack(len(head) + len(bin_head) + n), head, bin_head, data, choke))


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


_META_MARKERS = frozenset(range(0x80, 0x90)) | {0xDE, 0xDF}
_unpack_u32 = _U32.unpack_from
# marker -> (reader, width) of a sid wider than a fixint.
_SID_READERS = {0xCC: (struct.Struct(">B").unpack_from, 1), 0xCD: (_U16.unpack_from, 2),
                0xCE: (_unpack_u32, 4), 0xCF: (_U64.unpack_from, 8)}


_NODE_INVOKE_HEAD = struct.Struct(">I2sBQB").unpack_from


def read_job(data, pos, size):
    """A whole job at `pos` in `data` (bytes; `size` of them valid), sent by the node in one
    go: `[3, sid, event, meta]`, at most one `[4, sid, bin data]` and `[5, sid]`, framed, the
    sid written the same way in all three. Returns `(sid, event, meta_raw, data, next
    position, parts)`, or None for anything else (then the caller takes the frames one by
    one).

    The meta map is not decoded here but kept as its msgpack bytes (`meta_raw`, see
    read_meta): most handlers never look at it, and decoding an http-server job's meta was
    most of the worker's Python work per request. `parts` are the pieces of the reply's
    frames for this sid (see frame_parts), cut from what was read."""
    if size - pos < 16:
        return None
    p = pos + 6
    # The node's sids are above 2**32 (u64, `cf`): one unpack reads up to the event's marker.
    length, head, marker, sid, event_marker = _NODE_INVOKE_HEAD(data, pos)
    if head != b"\x94\x03":
        return None
    end = pos + 4 + length
    if marker == 0xCF:
        q = p + 9
        marker = event_marker
    elif marker < 0x80:
        q = p + 1
        sid = marker
        marker = data[q]
    else:
        reader = _SID_READERS.get(marker)
        if reader is None:
            return None
        q = p + 1 + reader[1]
        sid = reader[0](data, p + 1)[0]
        marker = data[q]
    if end > size:
        return None
    if 0xA0 <= marker <= 0xBF:
        start = q + 1
        stop = start + (marker & 0x1F)
    elif marker == 0xD9:
        start = q + 2
        stop = start + data[q + 1]
    else:
        return None
    if stop >= end or data[stop] not in _META_MARKERS:
        return None
    try:
        event = data[start:stop].decode("utf-8")
    except UnicodeDecodeError:
        return None
    head, choke = _parts_of(data[p:q])
    if data.startswith(choke, end) and end + len(choke) <= size:
        return sid, event, data[stop:end], b"", end + len(choke), (head, choke)
    body = end + 4
    if size - body < len(head) + 2 or not data.startswith(head, body):
        return None
    chunk_end = body + _unpack_u32(data, end)[0]
    b = body + len(head)
    marker = data[b]
    if marker == 0xC4:
        first = b + 2
        n = data[b + 1]
    elif marker == 0xC5 and b + 3 <= size:
        first = b + 3
        n = _U16.unpack_from(data, b + 1)[0]
    elif marker == 0xC6 and b + 5 <= size:
        first = b + 5
        n = _unpack_u32(data, b + 1)[0]
    else:
        return None
    if first + n != chunk_end or chunk_end + len(choke) > size \
            or not data.startswith(choke, chunk_end):
        return None
    return (sid, event, data[stop:end], data[first:chunk_end], chunk_end + len(choke),
            (head, choke))


def read_meta(meta_raw):
    """The meta map of read_job's `meta_raw` if it holds the values `_read_value` knows (what
    the node sends), else None (the caller then asks the general decoder)."""
    if meta_raw[0] & 0xF0 != 0x80 and meta_raw[0] != 0xDE:
        return None
    try:
        meta, pos = _read_map(meta_raw, 0, 0)
    except (TypeError, IndexError, UnicodeDecodeError, struct.error):
        return None
    return meta if pos == len(meta_raw) else None
