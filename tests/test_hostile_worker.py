"""A worker that breaks the worker channel's framing is dropped alone; the app keeps serving.

The worker is a real process on the real Unix socket: a script that speaks raw bytes (no SDK)
for its first runs and then becomes a normal Python SDK worker, so the test sees the node
recover by itself. Each run takes the next line of a script of behaviours, kept in a file.
"""

import stat
import sys

from conftest import PYTHON_SDK, NativeClient, endpoint

# Run by the node as a `binary` app: `PROGRAM --socket PATH`.
PROGRAM = r'''#!%(python)s
import os, socket, struct, sys, time

socket_path = sys.argv[sys.argv.index("--socket") + 1]
script = %(script)r
with open(script) as f:
    plan = f.read().split()
behaviour = plan[0] if plan else "sdk"
with open(script, "w") as f:
    f.write(" ".join(plan[1:]))
if behaviour == "sdk":
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = %(sdk)r
    os.execv(sys.executable, [sys.executable, "-m", "cocaine.worker", "--socket", socket_path,
                              os.path.join(here, "echo_app.py")])

def frame(body):
    return struct.pack(">I", len(body)) + body

def handshake():
    worker_id = os.environ["COCAINE_WORKER_ID"].encode()
    # [1, worker_id, 1, pid] by hand: fixarray 4, kind 1, str8 id, version 1, u32 pid.
    return frame(b"\x94\x01\xd9" + bytes([len(worker_id)]) + worker_id + b"\x01\xce"
                 + struct.pack(">I", os.getpid()))

s = socket.socket(socket.AF_UNIX)
s.connect(socket_path)
if behaviour == "huge-first":
    # A length prefix of 4 GiB instead of a handshake: the node must not try to buffer it.
    s.sendall(b"\xff\xff\xff\xff" + b"x" * 1000)
else:
    s.sendall(handshake())
    s.recv(65536)  # the first job's invoke
    # A well-framed message that is not msgpack: the node drops it and logs it...
    s.sendall(frame(b"\xc1\xc1garbage"))
    # ...then a length prefix far over max-message: the framing is lost for good.
    s.sendall(b"\x7f\xff\xff\xf0" + b"y" * 1000)
time.sleep(60)  # the node kills this process; it must not wait for it to leave
'''

ECHO_APP = "def echo(request):\n    return [request]\n"


def hostile_app(tmp_path, plan):
    folder = tmp_path / "hostile"
    folder.mkdir()
    script = folder / "plan"
    script.write_text(" ".join(plan))
    program = folder / "worker"
    program.write_text(PROGRAM % {"python": sys.executable, "script": str(script),
                                  "sdk": str(PYTHON_SDK)})
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    (folder / "echo_app.py").write_text(ECHO_APP)
    return program, script


def test_a_worker_that_breaks_framing_is_dropped_and_the_app_keeps_serving(node, zctx,
                                                                          tmp_path):
    program, script = hostile_app(tmp_path, ["garbage-then-huge", "huge-first"])
    ep = endpoint()
    manifest = {"type": "binary", "args": "local://%s" % program,
                "engine": {"pool-limit": 1, "max-message": 65536, "startup-timeout": 10,
                           "restart-intensity": 5, "restart-period": 60},
                "tasks": {"echo": {"type": "native-server", "endpoint": ep}}}
    n = node({"hostile": manifest})
    client = NativeClient(zctx, ep, timeout=30)
    # The first worker takes the job, then breaks its channel: the job fails, not the node.
    first = client.call("echo", b"first")
    assert first.code == 500, first
    n.wait_for_log(r"dropped a bad message")
    n.wait_for_log(r"broke the channel: message of 2147483632 bytes exceeds the limit of "
                   r"65536 bytes")
    # The second sends a 4 GiB length before any handshake; the third is a real worker.
    for body in (b"second", b"third"):
        reply = client.call("echo", body)
        assert reply.ok and reply.body == body, reply
    n.wait_for_log(r"broke the channel: message of 4294967295 bytes exceeds the limit")
    assert script.read_text() == "", "every hostile run was used"
    client.close()
