"""Issue 13, what is left: deploys over control of code that is not there (400), deploys that
say whether the first worker came up (broken apps do not report success), and the operator's
verbs (status, stop, start, scale, quit, top, --metrics)."""

import json
import shutil

from conftest import APPS, endpoint, python_app
from control import (  # noqa: F401 (cnode is a fixture)
    cli, cnode, error, ok, tar_package)

EXCEPTION = "ModuleNotFoundError: No module named 'nonexistent_module_for_e2e'"
MISSING = "local:///path/to/application/__init__.py"


def basic(engine=None, native=None):
    return python_app("basic.py", {"echo": {"type": "native-server",
                                            "endpoint": native or endpoint()}}, engine=engine)


# -- item 1: the node refuses code that is not there ------------------------------------------


def test_a_deploy_over_control_of_missing_code_is_a_400(cnode):
    n = cnode()
    absent = dict(basic(), args=MISSING)
    message = error(n, "deploy", 400, app="absent", manifest=absent)
    assert "args: %s does not exist on the node" % MISSING in message, message
    package = tar_package(files={"app.py": "x = 1\n"})
    relative = dict(basic(), args="local://nope.py")
    message = error(n, "deploy", 400, package, app="rel", manifest=relative)
    assert "args: local://nope.py does not exist in the package" in message, message
    assert ok(n, "list") == [], "nothing was stored or started"
    # The same package with the file named right deploys.
    good = dict(basic(), args="local://app.py")
    package = tar_package(files={"app.py": (APPS / "basic.py").read_text()})
    assert ok(n, "deploy", package, app="rel", manifest=good, timeout=60)["state"] == "running"


# -- item 2: broken apps do not report success ------------------------------------------------


def test_a_deploy_waits_for_the_first_worker_with_pool_min(cnode):
    n = cnode()
    reply = ok(n, "deploy", app="warm", manifest=basic({"pool-min": 1}), timeout=60)
    assert reply["state"] == "running", reply
    # Answered once the worker said hello: it is ready at once.
    workers = ok(n, "info", app="warm")["engine"]["workers"]
    assert workers["ready"] >= 1, workers
    assert workers["starting"] + workers["idle"] + workers["busy"] + workers["draining"] \
        == workers["total"], workers


def test_a_broken_deploy_exits_non_zero_with_one_line(cnode, tmp_path):
    n = cnode()
    manifest = python_app("broken.py", {"echo": {"type": "native-server",
                                                 "endpoint": endpoint()}},
                          engine={"pool-min": 1, "restart-intensity": 100})
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(manifest))
    done = cli("deploy", str(path), node=n, timeout=90)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "", done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error 500: broken: deployed, but it is broken: worker "), lines
    assert EXCEPTION in lines[0] and "Traceback" not in lines[0], lines
    # Listed as broken with the one-line reason; `info` has the same.
    shown = cli("list", node=n)
    row = [line for line in shown.stdout.splitlines() if line.startswith("broken ")]
    assert len(row) == 1 and " broken " in row[0] and EXCEPTION in row[0], shown.stdout
    info = cli("info", "broken", node=n)
    assert info.returncode == 0, info.stderr
    assert "state       broken" in info.stdout, info.stdout
    # It stays deployed (and retries): removing it works as for any app.
    assert cli("rm", "broken", node=n).returncode == 0


def test_a_good_deploy_still_prints_running(cnode, tmp_path):
    n = cnode()
    shutil.copy(APPS / "basic.py", tmp_path / "app.py")
    manifest = dict(basic({"pool-min": 2}), args="local://app.py")
    path = tmp_path / "good.json"
    path.write_text(json.dumps(manifest))
    done = cli("deploy", str(path), "--package", str(tmp_path), node=n, timeout=90)
    assert (done.returncode, done.stdout) == (0, "deployed good version 0 (running)\n"), \
        (done.stdout, done.stderr)
