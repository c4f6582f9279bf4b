"""Where handlers run: inline on the reading thread at concurrency 1, on reused pool threads
above it, and what still works while an inline handler is busy (cancel, heartbeats, EOF)."""

import os
import shutil
import socket
import tempfile
import time
import unittest

from tests.fakenode import JOBS_APP, WorkerTestCase


class InlineTestCase(WorkerTestCase):
    def start_inline(self, **env):
        env.setdefault("COCAINE_CONCURRENCY", "1")
        return self.start(JOBS_APP, env=env)

    def wait_started(self, gate):
        """Waits until wait_file's handler has started (it creates `<gate>.started`)."""
        limit = time.monotonic() + 5
        while not os.path.exists(gate + ".started"):
            self.assertLess(time.monotonic(), limit, "the handler did not start")
            time.sleep(0.005)

    def gate_path(self):
        folder = tempfile.mkdtemp(dir="/tmp", prefix="cwgate")
        self.addCleanup(shutil.rmtree, folder, True)
        return os.path.join(folder, "open")


class CorkTest(unittest.TestCase):
    """The inline runner's jobs of one read go out in one write (in-process, counted)."""

    class Sock:
        def __init__(self):
            self.writes = []

        def sendall(self, data):
            self.writes.append(bytes(data))

    class Job:
        def __init__(self, channel, frame):
            self.channel, self.frame = channel, frame
            self.ended = self.cancelled = self.started = self.running = False

        def run(self, poll):
            self.channel.reply(self, self.frame, final=True)

    def test_jobs_of_one_read_are_answered_in_one_write_and_a_lone_job_at_once(self):
        from cocaine.channel import Channel
        from cocaine.runners import Inline
        sock = self.Sock()
        channel = Channel(sock, 1 << 20)
        runner = Inline(None, channel)
        for frame in (b"a", b"b", b"c"):
            runner.submit(self.Job(channel, frame))
        runner.run_ready()
        self.assertEqual(sock.writes, [b"abc"])
        runner.submit(self.Job(channel, b"d"))
        runner.run_ready()
        self.assertEqual(sock.writes, [b"abc", b"d"])
        # Other threads' frames (heartbeats) are never held.
        channel.cork()
        channel.send_frame(b"hb")
        channel.uncork()
        self.assertEqual(sock.writes[-1], b"hb")


class InlineTest(InlineTestCase, unittest.TestCase):
    def test_plain_handlers_run_on_the_reading_thread(self):
        node = self.start_inline()
        for sid in range(1, 6):
            self.assertEqual(node.call(sid, "thread_name"), [[4, sid, b"main"], [5, sid]])

    def test_jobs_in_one_read_all_get_their_replies_in_order(self):
        node = self.start_inline()
        # Three whole requests in one write: the worker decodes them all from one read.
        from tests.fakenode import frame
        data = b"".join(frame(m) for sid in (1, 2, 3)
                        for m in ([3, sid, "echo", {}], [4, sid, b"r%d" % sid], [5, sid]))
        node.send_raw(data)
        self.assertEqual([node.recv() for _ in range(6)],
                         [[4, 1, b"r1"], [5, 1], [4, 2, b"r2"], [5, 2], [4, 3, b"r3"], [5, 3]])

    def test_reply_chunks_and_end_arrive_in_one_write(self):
        node = self.start_inline()
        node.send(3, 1, "echo", {})
        node.send(4, 1, b"abc")
        node.send(5, 1)
        # Both frames are already there when the first one is: they came in one write.
        self.assertEqual(node.recv(), [4, 1, b"abc"])
        node.conn.settimeout(0)
        self.assertEqual(node.conn.recv(64, socket.MSG_PEEK)[:4], b"\x00\x00\x00\x03")
        self.assertEqual(node.recv(), [5, 1])

    def test_cocaine_inline_runs_several_jobs_inline_and_answers_them_in_one_write(self):
        node = self.start_inline(COCAINE_CONCURRENCY="4", COCAINE_INLINE="1")
        from tests.fakenode import frame
        data = b"".join(frame(m) for sid in (1, 2, 3)
                        for m in ([3, sid, "thread_name", {}], [5, sid]))
        node.send_raw(data)
        expected = [[4, 1, b"main"], [5, 1], [4, 2, b"main"], [5, 2], [4, 3, b"main"], [5, 3]]
        size = sum(len(frame(m)) for m in expected)
        first = node.recv()
        self.assertEqual(first, expected[0])
        # Everything else is already there: the three replies came in one write.
        node.conn.settimeout(0)
        self.assertEqual(len(node.conn.recv(size, socket.MSG_PEEK)), size - len(frame(first)))
        self.assertEqual([first] + [node.recv() for _ in range(5)], expected)

    def test_cancel_during_a_long_handler_is_answered_when_it_returns(self):
        node = self.start_inline()
        gate = self.gate_path()
        node.send(3, 1, "wait_file", {})
        node.send(4, 1, gate.encode())
        node.send(5, 1)
        self.wait_started(gate)
        node.send(7, 1)
        with self.assertRaises(socket.timeout):
            node.recv(timeout=0.3)  # still running: the job holds the worker
        open(gate, "w").close()
        self.assertEqual(node.reply(1), [[6, 1, 499, "cancelled"]])
        self.assertEqual(node.call(2, "echo", b"next"), [[4, 2, b"next"], [5, 2]])

    def test_cancel_stops_a_generator_at_its_next_yield(self):
        node = self.start_inline()
        gate = self.gate_path()
        node.send(3, 1, "trickle_file", {})
        node.send(4, 1, gate.encode())
        node.send(5, 1)
        self.assertEqual(node.recv(), [4, 1, b"first"])
        node.send(7, 1)
        open(gate, "w").close()
        self.assertEqual(node.reply(1), [[6, 1, 499, "cancelled"]])
        self.assertEqual(node.call(2, "trickle_closed"), [[4, 2, b"yes"], [5, 2]])

    def test_heartbeats_keep_coming_during_a_long_handler(self):
        node = self.start_inline(COCAINE_HEARTBEAT_MS="100")
        gate = self.gate_path()
        self.addCleanup(lambda: open(gate, "w").close())
        node.send(3, 1, "wait_file", {})
        node.send(4, 1, gate.encode())
        node.send(5, 1)
        started = time.monotonic()
        for _ in range(3):
            self.assertEqual(node.recv(timeout=1.0, skip_heartbeats=False), [2])
        self.assertLess(time.monotonic() - started, 1.5)

    def test_eof_during_a_long_handler_ends_the_worker(self):
        node = self.start_inline()
        gate = self.gate_path()
        self.addCleanup(lambda: open(gate, "w").close())
        node.send(3, 1, "wait_file", {})
        node.send(4, 1, gate.encode())
        node.send(5, 1)
        node.conn.close()
        node.conn = None
        # The handler waits up to 10 s; the worker must not.
        self.assertEqual(node.wait_exit(timeout=3.0), 0)

    def test_errors_and_streaming_still_work(self):
        node = self.start_inline()
        self.assertEqual(node.call(1, "give_int"),
                         [[6, 1, 502, "TypeError: a reply chunk must be bytes or str, not int"]])
        node.send(3, 2, "watch", {})  # streaming: its own thread
        node.send(4, 2, b"s")
        self.assertEqual(node.recv(), [4, 2, b"s"])
        node.send(5, 2)
        self.assertEqual(node.recv(), [5, 2])
        node.send(8, "done")
        self.assertEqual(node.recv_until_eof(), [])
        self.assertEqual(node.wait_exit(), 0)

    def test_bad_concurrency_falls_back_to_threads(self):
        node = self.start(JOBS_APP, env={"COCAINE_CONCURRENCY": "many"})
        reply = node.call(1, "thread_name")
        self.assertNotEqual(reply[0][2], b"main")
        self.assertIn("COCAINE_CONCURRENCY='many'", node.stderr())


class PoolTest(InlineTestCase, unittest.TestCase):
    def test_threads_are_reused_between_jobs(self):
        node = self.start(JOBS_APP, env={"COCAINE_CONCURRENCY": "4"})
        names = {node.call(sid, "thread_name")[0][2] for sid in range(1, 11)}
        self.assertEqual(len(names), 1, names)
        self.assertNotIn(b"main", names)
        # The reading thread, the heartbeat thread and one pool thread.
        self.assertEqual(node.call(11, "threads"), [[4, 11, b"3"], [5, 11]])

    def test_no_more_threads_than_the_concurrency(self):
        node = self.start(JOBS_APP, env={"COCAINE_CONCURRENCY": "2"})
        gate = self.gate_path()
        for sid in (1, 2):
            node.send(3, sid, "wait_file", {})
            node.send(4, sid, gate.encode())
            node.send(5, sid)
        node.send(3, 3, "threads", {})
        node.send(5, 3)
        # Both pool threads are busy and there may be no third: job 3 waits for one of them.
        with self.assertRaises(socket.timeout):
            node.recv(timeout=0.3)
        open(gate, "w").close()
        got = node.replies(1, 2, 3)
        self.assertEqual(got[1], [[4, 1, b"waited"], [5, 1]])
        self.assertEqual(got[2], [[4, 2, b"waited"], [5, 2]])
        self.assertEqual(got[3], [[4, 3, b"4"], [5, 3]])  # reading, heartbeat, 2 in the pool


if __name__ == "__main__":
    unittest.main()
