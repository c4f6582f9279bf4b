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


if __name__ == "__main__":
    unittest.main()
