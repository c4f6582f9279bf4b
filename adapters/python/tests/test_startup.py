"""Loading the app, choosing the codec, and what fails before the handshake."""

import importlib.util
import os
import select
import shutil
import socket
import tempfile
import textwrap
import unittest

from cocaine import protocol
from tests.fakenode import EXAMPLE, FakeNode, WorkerTestCase


def write_files(test, files):
    """Creates `files` ({relative path: text}) in a fresh temp dir; returns the dir."""
    root = tempfile.mkdtemp(dir="/tmp", prefix="cwapp")
    test.addCleanup(shutil.rmtree, root, True)
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
    return root


class BrokenAppTest(unittest.TestCase):
    def assert_fails_before_connecting(self, app, *needles):
        node = FakeNode(app)
        self.addCleanup(node.close)
        self.assertEqual(node.wait_exit(), 1)
        readable, _, _ = select.select([node.listener], [], [], 0)
        self.assertEqual(readable, [], "the worker connected although its app failed")
        stderr = node.stderr()
        for needle in needles:
            self.assertIn(needle, stderr)

    def test_syntax_error(self):
        root = write_files(self, {"bad.py": "def echo(request)\n    return [request]\n"})
        self.assert_fails_before_connecting(os.path.join(root, "bad.py"),
                                            "Traceback", "SyntaxError", "bad.py")

    def test_failing_import(self):
        root = write_files(self, {"app.py": "import no_such_module_for_cocaine\n"})
        self.assert_fails_before_connecting(os.path.join(root, "app.py"), "Traceback",
                                            "ModuleNotFoundError", "no_such_module_for_cocaine")

    def test_exception_at_import(self):
        root = write_files(self, {"app.py": "raise RuntimeError('no config file')\n"})
        self.assert_fails_before_connecting(os.path.join(root, "app.py"), "importing",
                                            "Traceback", "RuntimeError: no config file")

    def test_missing_path_and_directory_without_init(self):
        root = write_files(self, {"pkg/handlers.py": "def echo(r): return [r]\n"})
        self.assert_fails_before_connecting(os.path.join(root, "pkg"), "without __init__.py")
        self.assert_fails_before_connecting(os.path.join(root, "missing.py"), "does not exist")

    def test_name_clash_with_an_imported_module(self):
        root = write_files(self, {"socket.py": "def echo(r): return [r]\n"})
        self.assert_fails_before_connecting(os.path.join(root, "socket.py"), "clashes")


class AppLoadingTest(WorkerTestCase, unittest.TestCase):
    def test_package_app_and_which_names_are_events(self):
        root = write_files(self, {
            "myapp/__init__.py": """
                from os.path import join          # imported, not the app's: not an event
                from .handlers import hello       # the app's own submodule: an event
                from .helper import shout
                import json                       # a module: not an event

                class Thing:                      # a class: not an event
                    pass

                def _private(request):
                    return [b"private"]
            """,
            "myapp/handlers.py": """
                def hello(request):
                    return [b"hello " + request]
            """,
            "myapp/helper.py": """
                from helper_sibling import TEXT   # the package's folder is on sys.path

                def shout(request):
                    return [TEXT]
            """,
            "helper_sibling.py": "TEXT = b'sibling'\n",
        })
        node = self.start(os.path.join(root, "myapp"))
        self.assertEqual(node.call(1, "hello", b"you"), [[4, 1, b"hello you"], [5, 1]])
        self.assertEqual(node.call(2, "shout"), [[4, 2, b"sibling"], [5, 2]])
        for sid, event in enumerate(["join", "json", "Thing", "_private"], start=3):
            self.assertEqual(node.call(sid, event),
                             [[6, sid, 404, "no handler for event '%s'" % event]])

    def test_dunder_all_lists_the_events(self):
        root = write_files(self, {"app.py": """
            from os.path import basename
            __all__ = ["basename"]

            def hidden(request):
                return [b"hidden"]
        """})
        node = self.start(os.path.join(root, "app.py"))
        self.assertEqual(node.call(1, "basename", b"/a/b"), [[4, 1, b"b"], [5, 1]])
        self.assertEqual(node.call(2, "hidden"), [[6, 2, 404, "no handler for event 'hidden'"]])

    def test_socket_from_environment_when_no_flag(self):
        node = FakeNode(args=[EXAMPLE])
        self.addCleanup(node.close)
        self.assertEqual(node.accept()[0], 1)
        self.assertEqual(node.call(1, "echo", b"env"), [[4, 1, b"env"], [5, 1]])

    def test_usage_errors_exit_2(self):
        for env in ({"COCAINE_SOCKET": None}, {"COCAINE_WORKER_ID": None}):
            with self.subTest(env=env):
                node = FakeNode(args=[EXAMPLE], env=env)
                self.addCleanup(node.close)
                self.assertEqual(node.wait_exit(), 2)


class CodecChoiceTest(WorkerTestCase, unittest.TestCase):
    """The worker must speak the same bytes whichever codec it uses."""

    def fake_msgpack(self, body):
        return write_files(self, {"msgpack/__init__.py": body})

    def exchange(self, node):
        self.assertEqual(node.call(1, "echo", b"\x00\xffbin"), [[4, 1, b"\x00\xffbin"], [5, 1]])
        self.assertEqual(node.call(2, "upper", b"abc"), [[4, 2, b"ABC"], [5, 2]])
        self.assertEqual(node.call(3, "fail", b""), [[6, 3, 502, "ValueError: bad request: b''"]])

    def test_builtin_codec_when_msgpack_is_not_importable(self):
        path = self.fake_msgpack("raise ImportError('msgpack hidden by the test')\n")
        self.exchange(self.start(pythonpath=[path], env={"COCAINE_NO_MSGPACK": None}))

    def test_cocaine_no_msgpack_forces_the_builtin_codec(self):
        # A msgpack package that fails if used at all.
        path = self.fake_msgpack("""
            def packb(*a, **k):
                raise AssertionError("msgpack package used")
            unpackb = packb
        """)
        self.exchange(self.start(pythonpath=[path], env={"COCAINE_NO_MSGPACK": "1"}))

    def test_msgpack_package_is_used_when_present(self):
        path = self.fake_msgpack("""
            def packb(*a, **k):
                raise AssertionError("msgpack package used")
            unpackb = packb
        """)
        node = FakeNode(pythonpath=[path], env={"COCAINE_NO_MSGPACK": None})
        self.addCleanup(node.close)
        # The handshake is built without the package (it is imported on first use only)...
        self.assertEqual(node.accept(), [1, "w-1", 1, node.proc.pid])
        # ...and a message only the general decoder reads is read by it: the poisoned package
        # fails it, proof that it is the codec in use.
        node.send(8, "bye")
        node.conn.shutdown(socket.SHUT_WR)
        self.assertEqual(node.wait_exit(), 0)
        self.assertIn("undecodable message: AssertionError: msgpack package used", node.stderr())

    def test_msgpack_is_not_imported_before_the_first_job(self):
        # A package whose import says so on stderr: the worker imports it on first use only.
        path = self.fake_msgpack("""
            import sys
            sys.stderr.write("msgpack imported\\n")
            sys.stderr.flush()
            from cocaine._msgpack import packb, unpackb
        """)
        node = self.start(pythonpath=[path], env={"COCAINE_NO_MSGPACK": None})
        self.assertEqual(node.call(1, "echo", b"x"), [[4, 1, b"x"], [5, 1]])
        self.assertNotIn("msgpack imported", node.stderr())
        node.send(8, "bye")  # read by the general decoder: the package is imported now
        node.conn.shutdown(socket.SHUT_WR)
        self.assertEqual(node.wait_exit(), 0)
        self.assertIn("msgpack imported", node.stderr())

    def test_this_process_codec(self):
        forced = os.environ.get("COCAINE_NO_MSGPACK", "") not in ("", "0")
        available = importlib.util.find_spec("msgpack") is not None
        self.assertEqual(protocol.CODEC, "msgpack" if available and not forced else "builtin")


if __name__ == "__main__":
    unittest.main()
