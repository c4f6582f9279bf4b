"""The hand-written codec of the per-job messages (cocaine._wire) against the general one."""

import random
import unittest

from cocaine import _msgpack, _wire, protocol

SIDS = (0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1)
SIZES = (0, 1, 31, 32, 255, 256, 65535, 65536, 70000)


def general(body):
    """What protocol.parse says without its fast path: (kind, args) or "error"."""
    saved = protocol._parse_fast
    protocol._parse_fast = lambda body: None
    try:
        return protocol.parse(body)
    except protocol.ProtocolError:
        return "error"
    finally:
        protocol._parse_fast = saved


# An http-server job's meta (docs/http.md): nested maps, arrays, a long and a non-ASCII str.
HTTP_META = {"peer": "127.0.0.1:45678", "task": "web",
             "http": {"method": "POST", "path": "/api/" + "p" * 300, "query": "a=%20",
                      "version": "1.1",
                      "headers": [["host", "example.com"], ["x-name", "caf\u00e9"],
                                  ["content-length", "64"]] + [["x-%d" % i, ""]
                                                               for i in range(20)]}}


def samples():
    for sid in SIDS:
        yield _msgpack.packb([4, sid, b"data"])
        yield _msgpack.packb([5, sid])
        yield _msgpack.packb([7, sid])
        yield _msgpack.packb([3, sid, "echo", {}])
        yield _msgpack.packb([3, sid, "ev", {"urgent": True, "timeout": 1500, "deadline": sid,
                                             "user": "ann", "peer": "tcp://1.2.3.4:5",
                                             "task": "t" * 40}])
        yield _msgpack.packb([3, sid, "web", HTTP_META])
    for size in SIZES:
        yield _msgpack.packb([4, 9, b"x" * size])


class EncodeTest(unittest.TestCase):
    def test_frames_are_the_general_encoding_byte_for_byte(self):
        for sid in SIDS:
            for size in SIZES:
                data = bytes(range(256)) * (size // 256) + b"y" * (size % 256)
                self.assertEqual(_wire.chunk_frame(sid, data),
                                 protocol.encode([protocol.CHUNK, sid, data]))
            self.assertEqual(protocol.choke_frame(sid), protocol.encode([protocol.CHOKE, sid]))


class DecodeTest(unittest.TestCase):
    def assert_agrees(self, body):
        fast = protocol._parse_fast(body)
        if fast is not None:  # None: left to the general decoder, which is always right
            self.assertEqual(fast, general(body), body)

    def test_valid_messages_decode_as_the_general_decoder_does(self):
        for body in samples():
            self.assertIsNotNone(protocol._parse_fast(body), body)
            self.assert_agrees(body)

    def test_wider_encodings_and_other_shapes(self):
        for body in (b"\x92\x05\xcf" + (5).to_bytes(8, "big"),        # sid as u64
                     b"\x93\x04\x01\xc5\x00\x02ab",                    # bin16 for 2 bytes
                     b"\x93\x04\x01\xa2ab",                            # str data
                     b"\x94\x03\x01\xa1e\x81\xa1k\xc0",                # nil in meta
                     b"\x94\x03\x01\xa1e\x81\x01\x02",                 # int key in meta
                     b"\x94\x03\x01\xa1e\xde\x00\x00",                 # map16 meta
                     b"\x91\x02", b"\x92\x08\xa3bye"):
            self.assert_agrees(body)

    def test_truncated_extended_and_mutated_messages(self):
        rng = random.Random(12)
        for body in samples():
            for cut in range(len(body)):
                self.assert_agrees(body[:cut])
            self.assert_agrees(body + b"\x00")
            for _ in range(40):
                mutated = bytearray(body)
                mutated[rng.randrange(len(body))] = rng.randrange(256)
                self.assert_agrees(bytes(mutated))

    def test_http_meta_is_read_by_the_fast_path(self):
        body = _msgpack.packb([3, 5, "web", HTTP_META])
        self.assertEqual(_wire.read_invoke(body), (5, "web", HTTP_META))

    def test_deep_or_unusual_meta_values_are_left_to_the_general_decoder(self):
        deep = {"a": [[[[[[[["x"]]]]]]]]}
        for meta in (deep, {"n": -1}, {"b": b"bin"}, {"m": {1: "int key"}},
                     {"a": list(range(20))}, {"nil": None, "s": "x" * 70000}):
            body = _msgpack.packb([3, 1, "e", meta])
            self.assert_agrees(body)
        self.assert_agrees(b"\x94\x03\x01\xa1e\x81\xa1f\xcb" + bytes(8))  # a float
        self.assertIsNone(_wire.read_invoke(_msgpack.packb([3, 1, "e", deep])))

    def test_hostile_lengths_are_refused_not_trusted(self):
        for body in (b"\x93\x04\x01\xc6\xff\xff\xff\xff", b"\x93\x04\x01\xc5\xff\xff\x00",
                     b"\x94\x03\x01\xd9\xff\x81", b"\x94\x03\x01\xa1e\x8f", b"\x92\x05",
                     b"\x92\x05\xcf\x00", b"\x94\x03\x01\xa1\xff\x80",
                     b"\x94\x03\x01\xa1e\x81\xa1k\xdc\xff\xff",
                     b"\x94\x03\x01\xa1e\x81\xa1k\xde\xff\xff\xa1k",
                     b"\x94\x03\x01\xa1e\x81\xa1k\xda\xff\xff",
                     b"\x94\x03\x01\xa1e\x81\xa1k\x9f"):
            self.assertIsNone(_wire.read_hot(body), body)
            self.assert_agrees(body)


def framed(*messages):
    return b"".join(protocol.encode(list(m)) for m in messages)


def whole_jobs():
    """(bytes, sid, event, meta, data) of jobs sent whole, as the node sends them."""
    for sid in SIDS:
        for meta in ({}, HTTP_META, {"task": "t", "timeout": 1500}):
            yield framed([3, sid, "echo", meta], [4, sid, b"hi"], [5, sid]), sid, "echo", \
                meta, b"hi"
        yield framed([3, sid, "e" * 40, {}], [5, sid]), sid, "e" * 40, {}, b""
    for size in SIZES:
        data = b"z" * size
        yield framed([3, 9, "echo", {}], [4, 9, data], [5, 9]), 9, "echo", {}, data


class ReadJobTest(unittest.TestCase):
    """_wire.read_job: a whole job (invoke, at most one chunk, choke) in one read."""

    def test_whole_jobs_are_read_with_their_meta_left_encoded(self):
        for raw, sid, event, meta, data in whole_jobs():
            got = _wire.read_job(raw, 0, len(raw))
            self.assertIsNotNone(got, raw)
            self.assertEqual(got[:2], (sid, event))
            self.assertEqual(protocol.decode_meta(got[2]), meta)
            self.assertEqual(got[3:5], (data, len(raw)))
            self.assertEqual(got[5], _wire.frame_parts(sid))

    def test_jobs_one_after_another_and_a_cut_one(self):
        raws = [raw for raw, *_ in whole_jobs()][:6]
        data = b"".join(raws) + raws[0][:-1]
        pos, seen = 0, 0
        while True:
            got = _wire.read_job(data, pos, len(data))
            if got is None:
                break
            pos, seen = got[4], seen + 1
        self.assertEqual((seen, pos), (6, len(data) - len(raws[0]) + 1))

    def test_other_shapes_are_left_to_the_message_by_message_path(self):
        for raw in (framed([3, 1, "e", {}], [4, 1, b"a"], [4, 1, b"b"], [5, 1]),  # 2 chunks
                    framed([3, 1, "e", {}], [4, 2, b"a"], [5, 1]),              # other sid
                    framed([3, 1, "e", {}], [4, 1, b"a"], [5, 2]),
                    framed([3, 1, "e", {}], [4, 1, "str data"], [5, 1]),
                    framed([3, 1, "e", {}], [4, 1, b"a"]),                       # no end yet
                    framed([3, 1, "e", {}], [7, 1]),
                    framed([3, 1, "e", []], [5, 1]),                             # meta not map
                    framed([3, 1, 5, {}], [5, 1]),
                    framed([3, 1, "e", {}, 1], [5, 1]),
                    framed([4, 1, b"a"], [5, 1]), framed([2]), b""):
            self.assertIsNone(_wire.read_job(raw, 0, len(raw)), raw)
        # The same sid written in another width in the chunk than in the invoke.
        raw = framed([3, 1, "e", {}]) + protocol.encode([4, 1, b"a"]).replace(
            b"\x93\x04\x01", b"\x93\x04\xcc\x01").replace(b"\x00\x00\x00\x06",
                                                          b"\x00\x00\x00\x07") + framed([5, 1])
        self.assertIsNone(_wire.read_job(raw, 0, len(raw)))

    def test_truncated_and_mutated_jobs_agree_with_the_frames_read_one_by_one(self):
        rng = random.Random(7)
        for raw, *_ in list(whole_jobs())[::3]:
            for cut in range(len(raw)):
                self.assertIsNone(_wire.read_job(raw, 0, cut), (raw, cut))
            for _ in range(60):
                mutated = bytearray(raw)
                mutated[rng.randrange(len(raw))] = rng.randrange(256)
                self.assert_agrees(bytes(mutated))

    def assert_agrees(self, raw):
        """A job read_job accepts is the one its frames give, read by the general decoder
        (its meta only when decoded: a bad one raises then)."""
        got = _wire.read_job(raw, 0, len(raw))
        if got is None:
            return
        bodies, used = protocol.cut_frames(raw)
        self.assertEqual(used, got[4])
        messages = [general(body) for body in bodies]
        self.assertEqual(messages[-1], (protocol.CHOKE, (got[0],)), raw)
        if len(messages) == 3:
            self.assertEqual(messages[1], (protocol.CHUNK, (got[0], got[3])), raw)
        else:
            self.assertEqual((len(messages), got[3]), (2, b""), raw)
        if messages[0] == "error":  # only the meta may be what is wrong
            self.assertRaises(protocol.ProtocolError, protocol.decode_meta, got[2])
        else:
            self.assertEqual(messages[0][1][:2], got[:2], raw)
            self.assertEqual(protocol.decode_meta(got[2]), messages[0][1][2], raw)

    def test_hostile_lengths_are_refused_not_trusted(self):
        for raw in (b"\xff\xff\xff\xff\x94\x03\x01\xa1e\x80" + framed([5, 1]),
                    framed([3, 1, "e", {}]) + b"\x00\x00\x00\x08\x93\x04\x01\xc6\xff\xff\xff\xff"
                    + framed([5, 1]),
                    framed([3, 1, "e", {}]) + b"\xff\xff\xff\xff\x93\x04\x01\xc4\x01a"
                    + framed([5, 1]),
                    b"\x00\x00\x00\x05\x94\x03\x01\xd9\xff\x80" + framed([5, 1])):
            self.assertIsNone(_wire.read_job(raw, 0, len(raw)), raw)

    def test_meta_decoding(self):
        for meta in ({}, HTTP_META, {"n": -1, "b": b"bin", "f": None}):
            self.assertEqual(protocol.decode_meta(_msgpack.packb(meta)), meta)
        for raw in (b"\x90", b"\x81\xa1k", b"\x81\xa1k\xc1", b"\xc1", b"\x80\x00"):
            self.assertRaises(protocol.ProtocolError, protocol.decode_meta, raw)


class ReplyTest(unittest.TestCase):
    def test_one_chunk_reply_is_the_general_encoding(self):
        for sid in SIDS:
            for size in SIZES:
                data = b"r" * size
                self.assertEqual(_wire.one_chunk_reply(_wire.frame_parts(sid), data),
                                 protocol.encode([protocol.CHUNK, sid, data])
                                 + protocol.encode([protocol.CHOKE, sid]))


if __name__ == "__main__":
    unittest.main()
