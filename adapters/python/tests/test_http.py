"""cocaine.http against a real worker process: reply heads ([9, sid, head]) and the
request's meta["http"]."""

import os
import struct
import unittest

from cocaine import http
from tests.fakenode import WorkerTestCase, frame

HTTP_APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "http_app.py")

META = {"task": "web", "http": {
    "method": "POST", "path": "/u/7", "query": "x=1&x=2&y", "version": "1.1",
    "headers": [["host", "a"], ["x-a", "hello"], ["x-b", "1"], ["x-b", "2"]]}}


class HttpReplyTest(WorkerTestCase, unittest.TestCase):
    def call(self, node, sid, event, meta, *chunks):
        node.send(3, sid, event, meta)
        for chunk in chunks:
            node.send(4, sid, chunk)
        node.send(5, sid)
        return node.reply(sid)

    def test_plain_response_sends_the_head_first(self):
        node = self.start(HTTP_APP)
        self.assertEqual(self.call(node, 1, "made", META, b"it"), [
            [9, 1, {"status": 201, "headers": [["Content-Type", "text/plain"],
                                               ["X-Two", "a b"]]}],
            [4, 1, b"made it"], [5, 1]])

    def test_iterable_and_empty_bodies(self):
        node = self.start(HTTP_APP)
        self.assertEqual(self.call(node, 1, "many", META), [
            [9, 1, {"status": 202, "headers": []}], [4, 1, b"a"], [4, 1, b"b"], [4, 1, b""],
            [5, 1]])
        self.assertEqual(self.call(node, 2, "empty", {}), [
            [9, 2, {"status": 204, "headers": []}], [5, 2]])

    def test_request_meta_reaches_a_plain_handler(self):
        node = self.start(HTTP_APP)
        self.assertEqual(self.call(node, 1, "whoami", META), [
            [4, 1, b"POST /u/7 1.1 hello x=2 ['1', '2']"], [5, 1]])
        # A job that did not come over HTTP has no request.
        self.assertEqual(self.call(node, 2, "whoami", {"task": "t"}),
                         [[4, 2, b"not http"], [5, 2]])

    def test_a_request_sent_whole_has_its_meta_decoded_when_asked(self):
        # invoke, chunk and choke in one write: the worker takes the job in one step and
        # keeps its meta undecoded until the handler reads it (_wire.read_job).
        node = self.start(HTTP_APP)
        node.send_raw(frame([3, 1, "whoami", META]) + frame([4, 1, b"body"]) + frame([5, 1]))
        self.assertEqual(node.reply(1), [[4, 1, b"POST /u/7 1.1 hello x=2 ['1', '2']"],
                                         [5, 1]])
        # A meta that is not msgpack fails only the handler that reads it, naming why.
        def bad_meta_job(sid, event):
            invoke = bytes((0x94, 3, sid, 0xA0 + len(event))) + event + b"\x81\xa1k\xc1"
            return struct.pack(">I", len(invoke)) + invoke + frame([5, sid])

        node.send_raw(bad_meta_job(2, b"whoami"))
        code, message = node.reply(2)[0][2:]
        self.assertEqual(code, 502)
        self.assertIn("ProtocolError: undecodable invoke meta", message)
        node.send_raw(bad_meta_job(3, b"made"))  # a handler that never reads it: fine
        self.assertEqual(node.reply(3)[-1], [5, 3])

    def test_streaming_head_then_chunks(self):
        node = self.start(HTTP_APP)
        self.assertEqual(self.call(node, 1, "stream", META, b"x", b"y"), [
            [9, 1, {"status": 206, "headers": [["x-path", "/u/7"]]}],
            [4, 1, b"x"], [4, 1, b"y"], [5, 1]])

    def test_bad_heads_fail_the_job_and_nothing_bad_goes_out(self):
        node = self.start(HTTP_APP)
        for sid, event in enumerate(("bad_status", "bad_header"), 1):
            reply = self.call(node, sid, event, META)
            self.assertEqual(len(reply), 1, reply)
            self.assertEqual(reply[0][:3], [6, sid, 502])
            self.assertIn("ValueError", reply[0][3])
        reply = self.call(node, 3, "late_head", META)
        self.assertEqual(reply[0], [4, 3, b"first"])
        self.assertEqual(reply[1][:3], [6, 3, 502])
        self.assertIn("before the first chunk", reply[1][3])
        # The worker goes on.
        self.assertEqual(self.call(node, 4, "made", META), [
            [9, 4, {"status": 201, "headers": [["Content-Type", "text/plain"],
                                               ["X-Two", "a b"]]}],
            [4, 4, b"made "], [5, 4]])


class HttpModuleTest(unittest.TestCase):
    def test_request_from_meta(self):
        req = http.Request.from_meta(META)
        self.assertEqual((req.method, req.path, req.query, req.version),
                         ("POST", "/u/7", "x=1&x=2&y", "1.1"))
        self.assertEqual(req.header("HOST"), "a")
        self.assertIsNone(req.header("nope"))
        self.assertEqual(req.params, {"x": "2", "y": ""})
        self.assertIsNone(http.Request.from_meta({}))
        self.assertIsNone(http.Request.from_meta(None))
        self.assertIsNone(http.request(), "outside a handler there is no request")

    def test_check_head(self):
        self.assertEqual(http.check_head(200, [("a", 1)]), (200, [["a", "1"]]))
        for status in (199, 600, "200", True, 200.0):
            with self.assertRaises(ValueError):
                http.check_head(status, [])
        for headers in ([("", "v")], [("a b", "v")], [("a", "x\ny")], [("a", "\0")], [("a",)],
                        [("é", "v")], [("a", "v")] * 257):
            with self.assertRaises(ValueError):
                http.check_head(200, headers)


if __name__ == "__main__":
    unittest.main()
