"""The built-in codec: exact bytes, round trips, rejections, and agreement with `msgpack`."""

import unittest

from cocaine import _msgpack
from cocaine._msgpack import MsgpackError, packb, unpackb

try:
    import msgpack
except ImportError:
    msgpack = None

INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
        -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]

# Values covering every encoding of the subset, including each length boundary.
VALUES = (
    [None, True, False]
    + INTS
    + ["", "a" * 31, "a" * 32, "a" * 255, "a" * 256, "a" * 65535, "a" * 65536, "héllo ✓"]
    + [b"", b"\x00\xff", b"x" * 255, b"x" * 256, b"x" * 65535, b"x" * 65536]
    + [[], [1] * 15, [1] * 16, [1] * 65535, [1] * 65536]
    + [{}, {str(i): i for i in range(15)}, {str(i): i for i in range(16)},
       {i: 0 for i in range(300)}]
    + [[4, 2**40, b"data"], [3, 7, "echo", {"urgent": True, "timeout": 1000, "user": "u"}],
       {"nested": [{"a": [None, -5]}]}, {1: "int key"}]
)


class BuiltinCodecTest(unittest.TestCase):
    def test_exact_bytes(self):
        cases = [
            (None, b"\xc0"), (True, b"\xc3"), (False, b"\xc2"),
            (0, b"\x00"), (127, b"\x7f"), (128, b"\xcc\x80"), (256, b"\xcd\x01\x00"),
            (65536, b"\xce\x00\x01\x00\x00"), (2**32, b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"),
            (-1, b"\xff"), (-32, b"\xe0"), (-33, b"\xd0\xdf"), (-129, b"\xd1\xff\x7f"),
            (-32769, b"\xd2\xff\xff\x7f\xff"),
            (-2**31 - 1, b"\xd3\xff\xff\xff\xff\x7f\xff\xff\xff"),
            ("", b"\xa0"), ("abc", b"\xa3abc"), ("a" * 32, b"\xd9\x20" + b"a" * 32),
            ("a" * 256, b"\xda\x01\x00" + b"a" * 256),
            (b"", b"\xc4\x00"), (b"ab", b"\xc4\x02ab"), (b"x" * 256, b"\xc5\x01\x00" + b"x" * 256),
            (b"x" * 65536, b"\xc6\x00\x01\x00\x00" + b"x" * 65536),
            ([], b"\x90"), ([1] * 16, b"\xdc\x00\x10" + b"\x01" * 16),
            ({}, b"\x80"), ({"a": 1}, b"\x81\xa1a\x01"),
            ({i: None for i in range(16)}, b"\xde\x00\x10" + bytes(
                b for i in range(16) for b in (i, 0xC0))),
            # The echo reply chunk, as the node expects it: fixarray, kind, sid, bin.
            ([4, 1, b"hello"], b"\x93\x04\x01\xc4\x05hello"),
        ]
        for value, expected in cases:
            with self.subTest(value=repr(value)[:40]):
                self.assertEqual(packb(value), expected)

    def test_round_trip(self):
        for value in VALUES:
            with self.subTest(value=repr(value)[:40]):
                decoded = unpackb(packb(value))
                self.assertEqual(decoded, value)
                self.assertEqual(type(decoded), type(value))

    def test_map32(self):
        big = {i: None for i in range(65536)}
        data = packb(big)
        self.assertEqual(data[:5], b"\xdf\x00\x01\x00\x00")
        self.assertEqual(unpackb(data), big)

    def test_tuples_and_bytes_likes_encode_as_arrays_and_bin(self):
        self.assertEqual(unpackb(packb((1, bytearray(b"a"), memoryview(b"b")))), [1, b"a", b"b"])

    def test_non_minimal_encodings_decode(self):
        self.assertEqual(unpackb(b"\xcf" + b"\x00" * 7 + b"\x05"), 5)
        self.assertEqual(unpackb(b"\xd0\x05"), 5)
        self.assertEqual(unpackb(b"\xdb\x00\x00\x00\x01a"), "a")
        self.assertEqual(unpackb(b"\xdd\x00\x00\x00\x01\xc0"), [None])

    def test_rejects_unsupported_values(self):
        for value in [1.5, {1, 2}, object(), 2**64, -2**63 - 1, [1.0]]:
            with self.subTest(value=value):
                with self.assertRaises(MsgpackError):
                    packb(value)

    def test_error_names_the_type(self):
        with self.assertRaisesRegex(MsgpackError, "float"):
            packb(0.5)
        with self.assertRaisesRegex(MsgpackError, "float 64"):
            unpackb(b"\xcb" + b"\x00" * 8)

    def test_rejects_bad_input(self):
        cases = {
            "empty": b"",
            "float 32": b"\xca\x00\x00\x00\x00",
            "ext": b"\xd4\x01\x00",
            "never used": b"\xc1",
            "truncated str": b"\xa3ab",
            "truncated bin": b"\xc4\x05ab",
            "truncated array": b"\x92\x01",
            "huge array header": b"\xdd\xff\xff\xff\xff",
            "trailing": b"\x01\x02",
            "bad utf-8": b"\xa2\xff\xfe",
            "unhashable key": b"\x81\x90\x01",
            "too deep": b"\x91" * 100 + b"\xc0",
        }
        for name, data in cases.items():
            with self.subTest(name):
                with self.assertRaises(MsgpackError):
                    unpackb(data)

    def test_deep_nesting_is_refused_when_encoding(self):
        value = None
        for _ in range(_msgpack.MAX_DEPTH + 5):
            value = [value]
        with self.assertRaises(MsgpackError):
            packb(value)


@unittest.skipUnless(msgpack is not None, "the msgpack package is not installed")
class AgreesWithMsgpackPackageTest(unittest.TestCase):
    def test_same_bytes_as_msgpack(self):
        for value in VALUES:
            with self.subTest(value=repr(value)[:40]):
                self.assertEqual(packb(value), msgpack.packb(value, use_bin_type=True))

    def test_decodes_what_msgpack_encodes(self):
        for value in VALUES:
            with self.subTest(value=repr(value)[:40]):
                data = msgpack.packb(value, use_bin_type=True)
                self.assertEqual(unpackb(data), msgpack.unpackb(data, raw=False,
                                                                strict_map_key=False))


if __name__ == "__main__":
    unittest.main()
