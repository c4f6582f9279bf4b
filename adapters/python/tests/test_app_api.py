"""cocaine.App registration and `async def` handlers, through real worker processes."""

import os
import unittest

import cocaine
from tests.fakenode import ADAPTER_DIR, FakeNode, WorkerTestCase
from tests.test_startup import write_files

ASYNC_APP = os.path.join(ADAPTER_DIR, "tests", "apps", "async_app.py")
REGISTERED_APP = os.path.join(ADAPTER_DIR, "tests", "apps", "registered.py")


class AppObjectTest(unittest.TestCase):
    """The registry itself, in process."""

    def test_duplicate_event_raises_at_registration(self):
        app = cocaine.App()
        app.add("echo", lambda request: [request])
        with self.assertRaisesRegex(ValueError, "'echo' is already registered"):
            @app.handler("echo")
            def other(request):
                return []

    def test_bad_names_and_handlers(self):
        app = cocaine.App()
        with self.assertRaises(ValueError):
            app.handler("")
        with self.assertRaises(ValueError):
            app.handler(3)
        with self.assertRaisesRegex(ValueError, "never events"):
            app.add("_private", lambda request: None)
        with self.assertRaises(TypeError):
            app.add("x", "not callable")

    def test_decorator_returns_the_function_and_marks_streaming(self):
        app = cocaine.App()

        def handler(request, response):
            pass

        self.assertIs(app.streaming("s")(handler), handler)
        self.assertTrue(cocaine.is_streaming(handler))
        self.assertEqual(app.handlers, {"s": handler})


class RegisteredAppTest(WorkerTestCase, unittest.TestCase):
    def test_registered_names_and_module_functions_coexist(self):
        node = self.start(REGISTERED_APP, env={"COCAINE_CONCURRENCY": "1"})
        self.assertEqual(node.call(1, "upper", b"abc"), [[4, 1, b"ABC"], [5, 1]])
        self.assertEqual(node.call(2, "echo", b"x"), [[4, 2, b"x"], [5, 2]])
        self.assertEqual(node.call(3, "named_after_itself"),
                         [[4, 3, b"default name"], [5, 3]])
        # A registered function answers to its registered name only.
        self.assertEqual(node.call(4, "shout", b"abc"),
                         [[6, 4, 404, "no handler for event 'shout'"]])
        self.assertEqual(node.call(5, "stream", b"ab", b"cd"),
                         [[4, 5, b"ba"], [4, 5, b"dc"], [5, 5]])

    def test_a_sync_app_imports_neither_asyncio_nor_logging(self):
        for concurrency in ("1", "4"):
            node = self.start(REGISTERED_APP, env={"COCAINE_CONCURRENCY": concurrency})
            self.assertEqual(node.call(1, "modules"), [[4, 1, b""], [5, 1]])
            node.close()

    def test_sdk_lines_go_through_logging_with_the_worker_prefix(self):
        node = self.start(REGISTERED_APP)
        node.send(42, 1)  # no such message kind: the SDK logs it and goes on
        self.assertEqual(node.call(1, "modules"), [[4, 1, b"logging"], [5, 1]])
        # Once the SDK has logged, its handler on the `cocaine` logger serves the app too.
        self.assertEqual(node.call(2, "log_something", b"hi"), [[5, 2]])
        node.send(8, "done")
        self.assertEqual(node.wait_exit(), 0)
        stderr = node.stderr()
        self.assertIn("cocaine worker test/w-1: ignored a bad message from the node", stderr)
        self.assertIn("cocaine worker test/w-1: from the app: hi\n", stderr)

    def test_app_configured_logging_gets_the_sdk_records(self):
        root = write_files(self, {"app.py": """
            import logging, sys
            logging.basicConfig(stream=sys.stderr, format="APP %(name)s %(levelname)s %(message)s")

            def fail(request):
                raise KeyError("missing")
            """})
        node = self.start(os.path.join(root, "app.py"))
        self.assertEqual(node.call(1, "fail"), [[6, 1, 502, "KeyError: 'missing'"]])
        node.send(8, "done")
        self.assertEqual(node.wait_exit(), 0)
        stderr = node.stderr()
        self.assertIn("APP cocaine.worker ERROR job 1 (event 'fail') raised", stderr)
        self.assertIn("KeyError: 'missing'", stderr)


class ConflictTest(unittest.TestCase):
    def assert_load_fails(self, source, *needles):
        root = write_files(self, {"app.py": source})
        node = FakeNode(os.path.join(root, "app.py"))
        self.addCleanup(node.close)
        self.assertEqual(node.wait_exit(), 1)
        for needle in needles:
            self.assertIn(needle, node.stderr())

    def test_registered_event_and_another_module_function(self):
        self.assert_load_fails("""
            import cocaine
            app = cocaine.App()

            @app.handler("echo")
            def shout(request):
                return [request]

            def echo(request):
                return [request]
            """, "cannot load the app", "'echo' is both registered on a cocaine.App and the "
                 "module-level function app.echo")

    def test_same_event_on_two_apps(self):
        self.assert_load_fails("""
            import cocaine
            one, two = cocaine.App(), cocaine.App()
            one.add("echo", lambda r: [r])
            two.add("echo", lambda r: [r])
            """, "'echo' is registered on two cocaine.App objects")

    def test_duplicate_on_one_app_fails_the_import(self):
        self.assert_load_fails("""
            import cocaine
            app = cocaine.App()
            app.add("echo", lambda r: [r])
            app.add("echo", lambda r: [r])
            """, "Traceback", "ValueError: event 'echo' is already registered")


class AsyncHandlerTest(WorkerTestCase, unittest.TestCase):
    def test_plain_async_handlers(self):
        for concurrency in ("1", "4"):
            node = self.start(ASYNC_APP, env={"COCAINE_CONCURRENCY": concurrency})
            self.assertEqual(node.call(1, "echo", b"a", b"b"), [[4, 1, b"ab"], [5, 1]])
            self.assertEqual(node.call(2, "release"), [[4, 2, b"released"], [5, 2]])
            self.assertEqual(node.call(3, "count", b"3"),
                             [[4, 3, b"1"], [4, 3, b"2"], [4, 3, b"3"], [5, 3]])
            self.assertEqual(node.call(4, "plain", b"x"), [[4, 4, b"plain x"], [5, 4]])
            self.assertEqual(node.call(5, "forbidden"), [[6, 5, 403, "go away"]])
            # asyncio (which imports logging) was loaded for the app's async handlers.
            self.assertEqual(node.call(6, "modules"), [[4, 6, b"asyncio,logging"], [5, 6]])
            node.close()

    def test_exception_is_502_with_a_traceback(self):
        node = self.start(ASYNC_APP)
        self.assertEqual(node.call(1, "fail"), [[6, 1, 502, "ValueError: async boom"]])
        self.assertEqual(node.call(2, "echo", b"still"), [[4, 2, b"still"], [5, 2]])
        node.send(8, "done")
        self.assertEqual(node.wait_exit(), 0)
        stderr = node.stderr()
        self.assertIn("cocaine worker test/w-1: job 1 (event 'fail') raised", stderr)
        self.assertIn('async_app.py", line', stderr)

    def test_tasks_overlap_on_the_loop(self):
        node = self.start(ASYNC_APP, env={"COCAINE_CONCURRENCY": "2"})
        node.send(3, 1, "hold", {})
        node.send(4, 1, b"one")
        node.send(5, 1)
        # `hold` waits on an event only `release` sets: a second task must run meanwhile.
        self.assertEqual(node.call(2, "release"), [[4, 2, b"released"], [5, 2]])
        self.assertEqual(node.reply(1), [[4, 1, b"held one"], [5, 1]])

    def test_cancel_cancels_the_task(self):
        node = self.start(ASYNC_APP)
        node.send(3, 1, "sleep", {})
        node.send(5, 1)
        node.send(7, 1)
        self.assertEqual(node.reply(1), [[6, 1, 499, "cancelled"]])
        self.assertEqual(node.call(2, "echo", b"after"), [[4, 2, b"after"], [5, 2]])
        node.send(8, "done")
        self.assertEqual(node.wait_exit(), 0)
        self.assertNotIn("Traceback", node.stderr())

    def test_streaming_async(self):
        node = self.start(ASYNC_APP)
        node.send(3, 1, "shout", {})
        node.send(4, 1, b"ab")
        self.assertEqual(node.recv(), [4, 1, b"AB"])  # before the request has ended
        node.send(4, 1, b"cd")
        node.send(5, 1)
        self.assertEqual(node.reply(1), [[4, 1, b"CD"], [5, 1]])
        self.assertEqual(node.call(2, "collect", b"abc", b"de"),
                         [[4, 2, b"got 5 bytes"], [5, 2]])

    def test_streaming_async_cancel(self):
        node = self.start(ASYNC_APP)
        node.send(3, 1, "stream_wait", {})
        node.send(4, 1, b"x")
        self.assertEqual(node.recv(), [4, 1, b"x"])
        node.send(7, 1)
        self.assertEqual(node.reply(1), [[6, 1, 499, "cancelled"]])
        node.send(8, "done")
        self.assertEqual(node.wait_exit(), 0)

    def test_terminate_waits_for_running_tasks(self):
        node = self.start(ASYNC_APP, env={"COCAINE_CONCURRENCY": "2"})
        node.send(3, 1, "hold", {})
        node.send(5, 1)
        node.send(8, "done")
        node.send(3, 2, "release", {})  # the node promised none: 503
        self.assertEqual(node.reply(2), [[6, 2, 503, "worker is terminating"]])
        # Nothing releases `hold`; the worker must still be serving it.
        self.assertIsNone(node.proc.poll())
        node.send(7, 1)
        self.assertEqual(node.reply(1), [[6, 1, 499, "cancelled"]])
        self.assertEqual(node.wait_exit(), 0)


if __name__ == "__main__":
    unittest.main()
