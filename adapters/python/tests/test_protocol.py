"""Framing and message checks of cocaine.protocol, in process."""

import struct
import unittest

from cocaine import _msgpack, protocol
from cocaine.protocol import FrameReader, ProtocolError, parse


def body(message):
    return _msgpack.packb(message)


class FramingTest(unittest.TestCase):
    def test_encode_is_length_prefixed_msgpack(self):
        frame = protocol.encode([5, 300])
        self.assertEqual(frame, b"\x00\x00\x00\x05\x92\x05\xcd\x01\x2c")

    def test_fixed_frames_match_the_codec(self):
        # Built without the codec, so a worker handshakes and heartbeats before importing it.
        self.assertEqual(protocol.HEARTBEAT_FRAME, protocol.encode([protocol.HEARTBEAT]))
        for worker_id, pid in (("w1.0", 1), ("w" * 40, 4194304), ("wörker", 2 ** 31 - 1)):
            self.assertEqual(protocol.handshake_frame(worker_id, pid),
                             protocol.encode([protocol.HANDSHAKE, worker_id,
                                              protocol.PROTOCOL_VERSION, pid]))

    def test_reader_reassembles_any_split(self):
        frames = [protocol.encode([4, 1, b"x" * n]) for n in (0, 1, 300, 70000)]
        stream = b"".join(frames)
        expected = [f[4:] for f in frames]
        for step in (1, 3, 4, 5, 1000, len(stream)):
            with self.subTest(step=step):
                reader = FrameReader()
                got = []
                for i in range(0, len(stream), step):
                    reader.feed(stream[i:i + step])
                    got.extend(reader.frames())
                self.assertEqual(got, expected)
                self.assertFalse(reader.pending())

    def test_pending_reports_a_partial_frame(self):
        reader = FrameReader()
        reader.feed(struct.pack(">I", 10) + b"abc")
        self.assertEqual(list(reader.frames()), [])
        self.assertTrue(reader.pending())


class ParseTest(unittest.TestCase):
    def test_valid_messages(self):
        cases = [
            ([2], (2, ())),
            ([3, 7, "echo", {"urgent": True}], (3, (7, "echo", {"urgent": True}))),
            ([4, 7, b"data"], (4, (7, b"data"))),
            ([4, 7, "text"], (4, (7, b"text"))),
            ([5, 2**64 - 1], (5, (2**64 - 1,))),
            ([7, 7], (7, (7,))),
            ([8, "bye"], (8, ("bye",))),
        ]
        for message, expected in cases:
            with self.subTest(message=message):
                self.assertEqual(parse(body(message)), expected)

    def test_bad_messages(self):
        cases = {
            "not msgpack": b"\xc1",
            "not an array": body({"a": 1}),
            "empty array": body([]),
            "kind not int": body(["3"]),
            "unknown kind": body([42]),
            "worker-only kind": body([1, "w", 1, 2]),
            "error kind": body([6, 1, 500, "x"]),
            "short invoke": body([3, 1, "echo"]),
            "long choke": body([5, 1, 2]),
            "negative sid": body([5, -1]),
            "bool sid": body([5, True]),
            "event not str": body([3, 1, b"echo", {}]),
            "meta not map": body([3, 1, "echo", []]),
            "chunk not bytes": body([4, 1, 5]),
            "reason not str": body([8, 1]),
            "trailing bytes": body([2]) + b"\x00",
        }
        for name, data in cases.items():
            with self.subTest(name):
                with self.assertRaises(ProtocolError):
                    parse(data)


if __name__ == "__main__":
    unittest.main()
