"""A watched folder (`cocaine node --watch DIR`, issue 6): a manifest file appearing starts
its app, an edit redeploys it, a broken edit is logged and changes nothing, and removing the
file removes the app."""

import json
import os

from conftest import NativeClient, endpoint
from control import (cnode, deploy, error, ok, versioned_app, wait_absent, wait_list,  # noqa: F401
                     wait_port_free, wait_state)

APP = "watched_app"


def write_atomic(path, content):
    """Writes beside the folder and renames into it, as deployment tools do."""
    content = json.dumps(content, indent=1).encode() if isinstance(content, dict) else content
    tmp = path.parent.parent / (".%s.tmp" % path.name)
    tmp.write_bytes(content)
    os.rename(tmp, path)


def test_watched_folder(cnode, zctx, tmp_path):
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "README.txt").write_text("not a manifest: ignored\n")
    n = cnode(watch=folder)
    assert ok(n, "list") == []
    native = endpoint()
    tasks = {"echo": {"type": "native-server", "endpoint": native}}
    path = folder / ("%s.json" % APP)

    # A manifest appears: its app starts, named after the file.
    write_atomic(path, versioned_app(1, tasks, manifest_version=1))
    entry = wait_state(n, APP)
    assert entry["origin"] == "watched" and entry["version"] == 1, entry
    assert entry["tasks"] == {"echo": {"type": "native-server", "endpoint": native}}, entry
    client = NativeClient(zctx, native)
    assert client.call("echo", b"a").body == b"v1:a"

    # Edited in place (new code and an engine setting): the app follows.
    path.write_text(json.dumps(versioned_app(2, tasks, engine={"pool-limit": 3},
                                             manifest_version=2)))
    wait_list(n, lambda es: any(e["app"] == APP and e["version"] == 2 and e["state"] == "running"
                                for e in es), what="the edit to be deployed")
    reply = client.call("echo", b"b")
    assert reply.ok and reply.body == b"v2:b", reply

    # Broken edits are logged and change nothing: not JSON, then a bad key.
    mark = len(n.lines)
    write_atomic(path, b'{"type": "python", "args": ')
    n.wait_for_log(r"(ERROR|WARN ).*%s" % APP, start=mark)
    reply = client.call("echo", b"c")
    assert reply.ok and reply.body == b"v2:c", reply
    mark = len(n.lines)
    write_atomic(path, versioned_app(1, tasks, engine={"pool-limt": 3}, manifest_version=3))
    line = n.wait_for_log(r"(ERROR|WARN ).*engine\.pool-limt", start=mark)
    assert APP in line, line
    reply = client.call("echo", b"d")
    assert reply.ok and reply.body == b"v2:d", reply
    entry = [e for e in ok(n, "list") if e["app"] == APP]
    assert len(entry) == 1 and entry[0]["version"] == 2 and entry[0]["state"] == "running", entry

    # The folder owns the app: control may not replace it.
    error(n, "deploy", 409, app=APP, manifest=versioned_app(1, tasks))

    # A good version again, then the file goes away: the app is gone, its port free.
    write_atomic(path, versioned_app(1, tasks, manifest_version=4))
    wait_list(n, lambda es: any(e["app"] == APP and e["version"] == 4 and e["state"] == "running"
                                for e in es), what="the fixed manifest to be deployed")
    assert client.call("echo", b"e").body == b"v1:e"
    client.close()
    path.unlink()
    wait_absent(n, APP)
    wait_port_free(native)
    assert ok(n, "list") == []
    error(n, "info", 404, app=APP)

    # And a store app of that name may now be deployed over control.
    reply = deploy(n, APP, versioned_app(2, tasks))
    assert reply["app"] == APP and reply["redeployed"] is False, reply
    assert NativeClient(zctx, native).call("echo", b"f").body == b"v2:f"
