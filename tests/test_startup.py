"""Test 8: startup errors stop the node with a message naming the problem."""

import socket

from conftest import endpoint, free_port, python_app


def test_bad_manifest_key(node):
    manifest = python_app("basic.py", {"echo": {"type": "native-server", "endpoint": endpoint()}},
                          engine={"pool-limt": 4})
    n = node({"typo": manifest}, expect_up=False)
    assert n.proc.returncode != 0
    assert "engine.pool-limt" in n.log, n.log
    assert "pool-limit" in n.log
    assert "node is up" not in n.log


def test_bad_manifest_task_key(node):
    manifest = python_app("basic.py", {"echo": {"type": "native-server", "endpoint": 5}})
    n = node({"typo": manifest}, expect_up=False)
    assert n.proc.returncode != 0
    assert "tasks.echo.endpoint" in n.log, n.log


def test_port_in_use(node):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = "tcp://127.0.0.1:%d" % port
        manifest = python_app("basic.py", {"echo": {"type": "native-server", "endpoint": busy}},
                              pubsub="tcp://127.0.0.1:%d" % free_port())
        n = node({"clash": manifest}, expect_up=False)
    assert n.proc.returncode != 0
    assert busy in n.log, n.log
    assert "node is up" not in n.log
