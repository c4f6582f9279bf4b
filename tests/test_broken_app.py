"""Issue 13 item 2: an app whose code does not import shows as broken, with a one-line reason,
in `list` and `info` (over control and in `cocaine list`), before any crash loop is declared."""

import re

from conftest import endpoint, python_app
from control import cli, cnode, ok  # noqa: F401 (cnode is a fixture)

EXCEPTION = "ModuleNotFoundError: No module named 'nonexistent_module_for_e2e'"


def test_an_app_that_cannot_import_lists_as_broken_with_one_line(cnode):
    broken = python_app("broken.py", {"echo": {"type": "native-server", "endpoint": endpoint()}},
                        engine={"pool-min": 1, "restart-intensity": 100, "restart-period": 1})
    good = python_app("basic.py", {"echo": {"type": "native-server", "endpoint": endpoint()}})
    n = cnode(manifests={"broken": broken, "good": good})
    n.wait_for_log(r"broken: worker \S+ failed: exited before its handshake")

    apps = {a["app"]: a for a in ok(n, "list")}
    entry = apps["broken"]
    assert entry["state"] == "broken", entry
    assert "\n" not in entry["error"], entry
    assert entry["error"].startswith("worker "), entry
    assert entry["error"].endswith(EXCEPTION), entry
    assert apps["good"]["state"] == "running" and "error" not in apps["good"], apps

    info = ok(n, "info", app="broken")
    assert info["state"] == "broken" and info["error"] == entry["error"], info

    shown = cli("list", node=n)
    assert shown.returncode == 0, shown
    line = [l for l in shown.stdout.splitlines() if l.startswith("broken")]
    assert len(line) == 1 and "broken" in line[0] and "Traceback" not in shown.stdout, shown.stdout
    assert re.search(r"ModuleNotFoundError", line[0]), shown.stdout


def test_a_crash_loop_logs_the_full_report_once_then_one_line(cnode):
    broken = python_app("broken.py", {"echo": {"type": "native-server", "endpoint": endpoint()}},
                        engine={"pool-min": 1, "restart-intensity": 100, "restart-period": 1})
    n = cnode(manifests={"broken": broken})
    n.wait_for_log(r"broken: worker \S+ failed: exited before its handshake [^\n]*"
                   + re.escape(EXCEPTION) + r" \(repeated\)")
    failures = re.findall(r"ERROR broken: worker \S+ failed: [^\n]*", n.log)
    full = [f for f in failures if not f.endswith("(repeated)")]
    assert len(full) == 1 and len(failures) >= 2, n.tail()
