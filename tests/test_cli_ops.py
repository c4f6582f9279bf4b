"""Issue 13, what is left: deploys over control of code that is not there (400), deploys that
say whether the first worker came up (broken apps do not report success), and the operator's
verbs (status, stop, start, scale, quit, top, --metrics)."""

import http.client
import json
import re
import shutil
import socket
import time

from prometheus_client.parser import text_string_to_metric_families

from conftest import APPS, NativeClient, endpoint, python_app
from control import (  # noqa: F401 (cnode is a fixture)
    cli, cnode, error, ok, port_state, tar_package, wait_port_free, wait_state)

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


# -- item 11: status, stop, start, scale, quit, top -------------------------------------------


def wait_workers(n, app, ready, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        workers = ok(n, "info", app=app)["engine"]["workers"]
        if workers["ready"] == ready and workers["total"] == ready:
            return workers
        assert time.monotonic() < deadline, "%s: %r, waiting for %d ready" % (app, workers, ready)
        time.sleep(0.1)


def test_status_stop_start_and_a_restart_keeps_a_stopped_app_stopped(cnode, zctx):
    n = cnode()
    native = endpoint()
    ok(n, "deploy", app="echo", manifest=basic({"pool-min": 1}, native), timeout=60)
    assert NativeClient(zctx, native).call("echo", b"a").body == b"a"

    shown = cli("status", node=n)
    assert shown.returncode == 0, shown.stderr
    row = [line for line in shown.stdout.splitlines() if line.startswith("echo ")]
    assert len(row) == 1 and "running" in row[0] and "1 ready (0 busy)" in row[0], shown.stdout
    status = json.loads(cli("status", "--json", node=n).stdout)
    assert status["apps"][0]["jobs"]["completed"] == 1, status

    done = cli("stop", "echo", node=n)
    assert (done.returncode, done.stdout) == (0, "stopped echo\n"), done.stderr
    wait_port_free(native)
    assert wait_state(n, "echo", "stopped")["state"] == "stopped"
    assert "echo: stopped" in n.log

    # A restart keeps it stopped.
    store, control = n.store, n.control
    assert n.stop() == 0
    n = cnode(store=store, control=control)
    assert ok(n, "list")[0]["state"] == "stopped"
    assert port_state(native) == "free"
    done = cli("start", "echo", node=n, timeout=90)
    assert (done.returncode, done.stdout) == (0, "started echo version 0 (running)\n"), \
        (done.stdout, done.stderr)
    assert NativeClient(zctx, native).call("echo", b"b").body == b"b"
    # Started means running after a restart too.
    store = n.store
    assert n.stop() == 0
    n = cnode(store=store, control=control)
    assert wait_state(n, "echo", "running")["state"] == "running"
    # Errors: unknown apps, bad bounds.
    assert cli("stop", "nope", node=n).stderr.startswith("error 404: ")
    done = cli("scale", "echo", node=n)
    assert done.returncode == 2 and "--pool-min" in done.stderr, done.stderr


def test_scale_at_run_time(cnode):
    n = cnode()
    ok(n, "deploy", app="echo", manifest=basic({"pool-min": 1, "pool-limit": 4}), timeout=60)
    done = cli("scale", "echo", "--pool-min", "3", node=n)
    assert (done.returncode, done.stdout) == (0, "scaled echo: pool-min 3, pool-limit 4\n"), \
        done.stderr
    wait_workers(n, "echo", 3)
    done = cli("scale", "echo", "--pool-min", "1", "--pool-limit", "1", node=n)
    assert done.returncode == 0, done.stderr
    wait_workers(n, "echo", 1)
    done = cli("scale", "echo", "--pool-min", "5", node=n)
    assert done.returncode == 1 and done.stderr.startswith("error 400: "), done.stderr


def test_top_once_shows_every_app(cnode, zctx):
    n = cnode()
    native = endpoint()
    ok(n, "deploy", app="echo", manifest=basic({"pool-min": 1}, native), timeout=60)
    ok(n, "deploy", app="idle", manifest=basic(), timeout=60)
    client = NativeClient(zctx, native)
    for i in range(5):
        assert client.call("echo", b"%d" % i).ok
    done = cli("top", "--once", "--interval", "0.2", node=n)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("cocaine top  %s  uptime " % n.control), lines
    assert "\x1b" not in done.stdout
    header = lines[2].split()
    assert header == ["APP", "STATE", "REQ/S", "QUEUE", "BUSY", "IDLE", "STARTING", "P50", "P99",
                      "ERRORS"], lines
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert set(rows) == {"echo", "idle"}, lines
    echo = rows["echo"]
    assert echo[1] == "running" and echo[5] == "1" and echo[7] != "-", echo
    assert rows["idle"][7] == "-", rows


def test_quit_stops_the_node(cnode):
    n = cnode()
    ok(n, "deploy", app="echo", manifest=basic({"pool-min": 1}), timeout=60)
    # Asked to stop, as with SIGTERM: its workers are checked for at teardown.
    n.sample_workers()
    n.signalled = True
    done = cli("quit", node=n)
    assert (done.returncode, done.stdout) == (0, "the node at %s is stopping\n" % n.control), \
        done.stderr
    assert n.wait_exit(30) == 0, n.tail()
    assert "quit asked over control" in n.log


# -- item 11: --metrics ------------------------------------------------------------------------


def get(address, method="GET", path="/metrics"):
    host, port = address[len("tcp://"):].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def raw_exchange(address, data):
    host, port = address[len("tcp://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def samples(text):
    """{(name, frozenset(labels)): value} of every sample, parsed by prometheus_client."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_metrics_in_the_prometheus_text_format(cnode, zctx):
    metrics = endpoint()
    n = cnode(extra_args=["--metrics", metrics[len("tcp://"):]])
    n.wait_for_log(r"metrics endpoint listening on %s" % re.escape(metrics))
    native = endpoint()
    ok(n, "deploy", app="echo", manifest=basic({"pool-min": 1}, native), timeout=60)
    ok(n, "deploy", app="off", manifest=basic(), timeout=60)
    ok(n, "stop", app="off")
    client = NativeClient(zctx, native)
    for i in range(3):
        assert client.call("echo", b"%d" % i).ok
    assert client.call("nope").code == 404

    status, headers, body = get(metrics)
    assert status == 200, (status, body)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    found = samples(body)
    echo = {("app", "echo")}

    def value(name, **labels):
        key = (name, frozenset(set(labels.items()) | echo if "app" not in labels
                               else labels.items()))
        assert key in found, (key, sorted(found))
        return found[key]

    assert value("cocaine_app_up", state="running") == 1
    assert value("cocaine_app_up", app="off", state="stopped") == 0
    assert value("cocaine_jobs_completed_total", task="echo") == 3
    assert value("cocaine_jobs_failed_total", task="echo") == 1
    assert value("cocaine_jobs_accepted_total", task="echo") == 4
    assert value("cocaine_app_workers", state="idle") + value("cocaine_app_workers", state="busy") \
        == 1
    assert value("cocaine_app_pool_min_workers") == 1
    assert value("cocaine_job_run_seconds_count", task="echo") == 4
    assert value("cocaine_job_run_seconds", task="echo", quantile="0.99") >= 0
    assert value("cocaine_app_queue_jobs") == 0
    uptime = [v for (name, _), v in found.items() if name == "cocaine_node_uptime_seconds"]
    assert len(uptime) == 1 and uptime[0] > 0, uptime
    # HEAD: the same head, no body.
    status, headers, body = get(metrics, method="HEAD")
    assert (status, body) == (200, ""), (status, body)


def test_the_metrics_endpoint_answers_bad_requests_and_stays_up(cnode):
    metrics = endpoint()
    n = cnode(extra_args=["--metrics", metrics])
    n.wait_for_log(r"metrics endpoint listening on ")
    assert get(metrics, path="/")[0] == 404
    assert get(metrics, path="/metrics/x")[0] == 404
    assert get(metrics, method="POST")[0] == 405
    assert raw_exchange(metrics, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_exchange(metrics, b"GET /metrics HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    huge = b"GET /metrics HTTP/1.1\r\nx-pad: " + b"a" * 20000 + b"\r\n\r\n"
    assert raw_exchange(metrics, huge).startswith(b"HTTP/1.1 431 "), "an oversized head"
    assert raw_exchange(metrics, b"GET /metr") == b"", "a truncated head is closed unanswered"
    assert raw_exchange(metrics, b"") == b""
    assert get(metrics)[0] == 200, "still serving"
    done = cli("list", node=n)
    assert done.returncode == 0


def test_a_bad_metrics_address_is_refused(cnode, tmp_path):
    done = cli("node", "--metrics", "udp://127.0.0.1:1", "--store", str(tmp_path / "s"))
    assert done.returncode == 2 and "--metrics" in done.stderr, done.stderr
