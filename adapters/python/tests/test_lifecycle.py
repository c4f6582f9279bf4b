"""Cancel, terminate, heartbeats, node loss and malformed input, with a real worker process."""

import socket
import struct
import time
import unittest

from tests.fakenode import JOBS_APP, WorkerTestCase


class CancelTest(WorkerTestCase, unittest.TestCase):
    def test_cancel_of_a_running_plain_job_is_answered_when_its_handler_returns(self):
        node = self.start(JOBS_APP)
        node.send(3, 1, "gate_wait", {})
        node.send(5, 1)
        node.send(7, 1)
        # The handler is still blocked on the gate, so the job still holds the worker: no
        # answer yet (the node kills a worker whose job does not let go in time).
        with self.assertRaises(socket.timeout):
            node.recv(timeout=0.3)
        node.send(7, 1)  # a second cancel gets nothing
        node.send(3, 2, "gate_open", {})
        node.send(5, 2)
        # Once the handler returns, its reply is dropped and the 499 goes out.
        self.assertEqual(node.replies(1, 2),
                         {1: [[6, 1, 499, "cancelled"]], 2: [[4, 2, b"opened"], [5, 2]]})
        node.send(8, "done")
        self.assertEqual(node.recv_until_eof(), [])
        self.assertEqual(node.wait_exit(), 0)

    def test_cancel_stops_a_generator(self):
        node = self.start(JOBS_APP)
        node.send(3, 1, "trickle", {})
        node.send(5, 1)
        self.assertEqual(node.recv(), [4, 1, b"first"])
        node.send(7, 1)
        # The generator waits on the gate; at its next yield it is closed, then 499 goes out.
        node.send(3, 2, "gate_open", {})
        node.send(5, 2)
        self.assertEqual(node.replies(1, 2),
                         {1: [[6, 1, 499, "cancelled"]], 2: [[4, 2, b"opened"], [5, 2]]})
        self.assertEqual(node.call(3, "trickle_closed"), [[4, 3, b"yes"], [5, 3]])
        node.send(8, "done")
        self.assertEqual(node.recv_until_eof(), [])
        self.assertEqual(node.wait_exit(), 0)

    def test_cancel_raises_cancelled_in_a_streaming_handler(self):
        node = self.start(JOBS_APP)
        node.send(3, 1, "watch", {})
        node.send(4, 1, b"a")
        self.assertEqual(node.recv(), [4, 1, b"a"])
        node.send(7, 1)
        self.assertEqual(node.recv(), [6, 1, 499, "cancelled"])
        node.send(4, 1, b"late")  # in flight when the job ended: ignored
        self.assertEqual(node.call(2, "cancel_seen"), [[4, 2, b"yes"], [5, 2]])
        node.send(8, "done")
        self.assertEqual(node.recv_until_eof(), [])
        self.assertEqual(node.wait_exit(), 0)
        self.assertNotIn("Traceback", node.stderr())

    def test_cancel_before_the_request_ended(self):
        node = self.start(JOBS_APP)
        node.send(3, 1, "echo", {})
        node.send(4, 1, b"part")
        node.send(7, 1)
        self.assertEqual(node.recv(), [6, 1, 499, "cancelled"])
        node.send(5, 1)  # the handler must never run
        self.assertEqual(node.call(2, "echo", b"next"), [[4, 2, b"next"], [5, 2]])

    def test_cancel_of_a_finished_job_is_ignored(self):
        node = self.start(JOBS_APP)
        self.assertEqual(node.call(1, "echo", b"x"), [[4, 1, b"x"], [5, 1]])
        node.send(7, 1)
        self.assertEqual(node.call(2, "echo", b"y"), [[4, 2, b"y"], [5, 2]])


class TerminateTest(WorkerTestCase, unittest.TestCase):
    def test_idle_worker_exits_at_once(self):
        node = self.start()
        node.send(8, "idle")
        self.assertEqual(node.recv_until_eof(), [])
        self.assertEqual(node.wait_exit(), 0)

    def test_running_job_finishes_then_the_worker_exits(self):
        node = self.start()
        node.send(3, 1, "stream", {})
        node.send(4, 1, b"before")
        self.assertEqual(node.recv(), [4, 1, b"before"])
        node.send(8, "stopping")
        # Still serving job 1 after the terminate...
        node.send(4, 1, b"after")
        self.assertEqual(node.recv(), [4, 1, b"after"])
        # ...but taking no new job.
        node.send(3, 2, "echo", {})
        self.assertEqual(node.recv(), [6, 2, 503, "worker is terminating"])
        self.assertIsNone(node.proc.poll())
        node.send(5, 1)
        self.assertEqual(node.recv(), [5, 1])
        self.assertEqual(node.recv_until_eof(), [])
        self.assertEqual(node.wait_exit(), 0)


class LivenessTest(WorkerTestCase, unittest.TestCase):
    def test_heartbeats_keep_coming_during_a_long_job(self):
        node = self.start(JOBS_APP, env={"COCAINE_HEARTBEAT_MS": "100"})
        node.send(3, 1, "gate_wait", {})
        node.send(5, 1)
        started = time.monotonic()
        for _ in range(3):
            self.assertEqual(node.recv(timeout=1.0, skip_heartbeats=False), [2])
        # Three heartbeats 100 ms apart: about 300 ms, nowhere near the 5 s default.
        self.assertLess(time.monotonic() - started, 1.5)

    def test_exits_when_the_node_is_silent_past_the_timeout(self):
        node = self.start(env={"COCAINE_HEARTBEAT_MS": "100", "COCAINE_TIMEOUT_MS": "500"})
        # Answering the worker's heartbeats keeps it alive well past 500 ms...
        started = time.monotonic()
        while time.monotonic() - started < 0.8:
            self.assertEqual(node.recv(timeout=1.0, skip_heartbeats=False), [2])
            node.send(2)
        self.assertIsNone(node.proc.poll())
        # ...and silence makes it leave.
        silent = time.monotonic()
        self.assertEqual(node.wait_exit(timeout=3.0), 1)
        self.assertGreater(time.monotonic() - silent, 0.3)
        self.assertIn("nothing heard from the node", node.stderr())

    def test_eof_exits_at_once(self):
        node = self.start(JOBS_APP)
        node.send(3, 1, "gate_wait", {})  # even with a job blocked
        node.send(5, 1)
        node.conn.close()
        node.conn = None
        self.assertEqual(node.wait_exit(), 0)


class BadInputTest(WorkerTestCase, unittest.TestCase):
    def test_malformed_messages_are_logged_and_ignored(self):
        node = self.start()
        for body in (b"\xc1", b"\x90", b"\x91\x2a", b"\x92\x05\xa1x", b"\x93\x04\x01\x05",
                     b"\x94\x06\x01\xcd\x01\xf4\xa1x", b""):
            node.send_raw(struct.pack(">I", len(body)) + body)
        node.send(4, 99, b"chunk for no job")
        node.send(5, 99)
        self.assertEqual(node.call(1, "echo", b"fine"), [[4, 1, b"fine"], [5, 1]])
        node.send(8, "done")
        self.assertEqual(node.wait_exit(), 0)
        stderr = node.stderr()
        self.assertIn("unknown message kind 42", stderr)
        self.assertIn("never sent by the node", stderr)

    def test_eof_inside_a_frame_is_a_framing_error(self):
        node = self.start()
        node.send_raw(struct.pack(">I", 100) + b"\x93\x04")
        node.conn.close()
        node.conn = None
        self.assertEqual(node.wait_exit(), 1)
        self.assertIn("middle of a frame", node.stderr())


if __name__ == "__main__":
    unittest.main()
