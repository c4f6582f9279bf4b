"""Jobs through a real worker process: plain, generator, streaming, errors, overlap."""

import unittest

from cocaine import _msgpack
from tests.fakenode import JOBS_APP, TIMEOUT, FakeNode, WorkerTestCase


class PlainHandlerTest(WorkerTestCase, unittest.TestCase):
    def test_handshake_and_echo_bytes_on_the_wire(self):
        node = FakeNode()
        self.addCleanup(node.close)
        node.listener.settimeout(TIMEOUT)
        node.conn, _ = node.listener.accept()
        # [1, "w-1", 1, pid], the pid in its smallest unsigned encoding.
        self.assertEqual(node.recv_raw(), b"\x94\x01\xa3w-1\x01" + _msgpack.packb(node.proc.pid))
        node.send(3, 1, "echo", {})
        node.send(4, 1, b"hello")
        node.send(5, 1)
        self.assertEqual(node.recv_raw(), b"\x93\x04\x01\xc4\x05hello")
        self.assertEqual(node.recv_raw(), b"\x92\x05\x01")

    def test_request_in_several_chunks_is_joined(self):
        node = self.start()
        self.assertEqual(node.call(1, "echo", b"ab", b"", b"cd", b"e"),
                         [[4, 1, b"abcde"], [5, 1]])

    def test_empty_request_is_empty_bytes(self):
        node = self.start()
        self.assertEqual(node.call(1, "echo"), [[4, 1, b""], [5, 1]])

    def test_generator_chunks(self):
        node = self.start()
        self.assertEqual(node.call(9, "count", b"3"),
                         [[4, 9, b"1"], [4, 9, b"2"], [4, 9, b"3"], [5, 9]])

    def test_str_chunks_are_sent_as_utf8_bin(self):
        node = self.start()
        reply = node.call(1, "upper", "héllo".encode("utf-8"))
        self.assertEqual(reply, [[4, 1, "HÉLLO".encode("utf-8")], [5, 1]])
        self.assertIsInstance(reply[0][2], bytes)

    def test_none_is_an_empty_reply(self):
        node = self.start()
        self.assertEqual(node.call(1, "nothing", b"x"), [[5, 1]])

    def test_large_sid_and_chunk(self):
        node = self.start()
        sid = 2**64 - 1
        data = bytes(range(256)) * 4096
        self.assertEqual(node.call(sid, "echo", data), [[4, sid, data], [5, sid]])

    def test_missing_handler_is_404_for_that_job_only(self):
        node = self.start()
        self.assertEqual(node.call(1, "nope"), [[6, 1, 404, "no handler for event 'nope'"]])
        self.assertEqual(node.call(2, "_helper"),
                         [[6, 2, 404, "no handler for event '_helper'"]])
        self.assertEqual(node.call(3, "echo", b"ok"), [[4, 3, b"ok"], [5, 3]])

    def test_exception_is_502_and_the_worker_goes_on(self):
        node = self.start()
        self.assertEqual(node.call(1, "fail", b"x"),
                         [[6, 1, 502, "ValueError: bad request: b'x'"]])
        self.assertEqual(node.call(2, "echo", b"still here"), [[4, 2, b"still here"], [5, 2]])
        node.send(8, "done")
        self.assertEqual(node.wait_exit(), 0)
        stderr = node.stderr()
        self.assertIn("Traceback (most recent call last)", stderr)
        self.assertIn("ValueError: bad request: b'x'", stderr)

    def test_cocaine_error_chooses_the_code(self):
        node = self.start()
        self.assertEqual(node.call(1, "forbidden"), [[6, 1, 403, "go away"]])

    def test_bad_chunk_type_and_system_exit_are_502(self):
        node = self.start(JOBS_APP)
        self.assertEqual(node.call(1, "give_int"),
                         [[6, 1, 502, "TypeError: a reply chunk must be bytes or str, not int"]])
        self.assertEqual(node.call(2, "exit_handler"), [[6, 2, 502, "SystemExit: 3"]])
        self.assertEqual(node.call(3, "gate_open"), [[4, 3, b"opened"], [5, 3]])

    def test_chunk_over_max_message_is_413_not_a_dead_worker(self):
        node = self.start(JOBS_APP, env={"COCAINE_MAX_MESSAGE": "1000"})
        self.assertEqual(node.call(1, "big", b"900"), [[4, 1, b"x" * 900], [5, 1]])
        reply = node.call(2, "big", b"1000")
        self.assertEqual(reply[0][:3], [6, 2, 413])
        self.assertEqual(node.call(3, "big", b"1"), [[4, 3, b"x"], [5, 3]])


class StreamingHandlerTest(WorkerTestCase, unittest.TestCase):
    def test_chunks_are_echoed_as_they_arrive(self):
        node = self.start()
        node.send(3, 1, "stream", {})
        for chunk in (b"one", b"two", b"three"):
            node.send(4, 1, chunk)
            self.assertEqual(node.recv(), [4, 1, chunk])
        node.send(5, 1)
        self.assertEqual(node.recv(), [5, 1])

    def test_explicit_error_and_close(self):
        node = self.start()
        self.assertEqual(node.call(1, "words"), [[6, 1, 400, "empty request"]])
        self.assertEqual(node.call(2, "words", b"abc", b"de"), [[4, 2, b"5 bytes"], [5, 2]])

    def test_event_and_meta_reach_the_handler(self):
        node = self.start(JOBS_APP)
        node.send(3, 1, "show_meta", {"urgent": True, "timeout": 1500, "user": "ann"})
        node.send(5, 1)
        self.assertEqual(node.reply(1), [
            [4, 1, b"show_meta [('timeout', 1500), ('urgent', True), ('user', 'ann')]"],
            [5, 1]])


class OverlapTest(WorkerTestCase, unittest.TestCase):
    def test_fast_job_overtakes_a_slow_one(self):
        node = self.start(JOBS_APP)
        node.send(3, 1, "gate_wait", {})
        node.send(5, 1)
        # Job 1 now blocks until job 3 opens the gate; job 2 must not wait for it.
        self.assertEqual(node.call(2, "echo", b"fast"), [[4, 2, b"fast"], [5, 2]])
        node.send(3, 3, "gate_open", {})
        node.send(5, 3)
        self.assertEqual(node.replies(1, 3), {1: [[4, 1, b"waited"], [5, 1]],
                                              3: [[4, 3, b"opened"], [5, 3]]})

    def test_request_chunks_interleave_between_jobs(self):
        node = self.start()
        node.send(3, 1, "echo", {})
        node.send(3, 2, "stream", {})
        node.send(4, 1, b"a")
        node.send(4, 2, b"x")
        self.assertEqual(node.recv(), [4, 2, b"x"])
        node.send(4, 1, b"b")
        node.send(5, 1)
        self.assertEqual(node.reply(1), [[4, 1, b"ab"], [5, 1]])
        node.send(5, 2)
        self.assertEqual(node.recv(), [5, 2])


if __name__ == "__main__":
    unittest.main()
