"""`cocaine bench call` against a real node: its JSON report, errors counted, bad targets."""

import json
import subprocess

import pytest

from conftest import cocaine_bin, endpoint, python_app


def start_app(node):
    eps = {"native": endpoint(), "server": endpoint(), "missing": endpoint()}
    manifest = python_app(
        "basic.py",
        {
            "echo": {"type": "native-server", "endpoint": eps["native"]},
            "zecho": {"type": "zeromq-server", "endpoint": eps["server"]},
            "missing": {"type": "zeromq-server", "endpoint": eps["missing"]},
        },
        engine={"pool-limit": 2, "pool-min": 1},
    )
    return node({"basic": manifest}), eps


def bench(*args, check=True):
    """Runs `cocaine bench call ARGS --json` for a short while; returns (report, process)."""
    proc = subprocess.run(
        [cocaine_bin(), "bench", "call", *args, "--seconds", "0.5", "--json"],
        capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1]), proc
    return None, proc


def assert_measured(report, n):
    assert report["requests"] > 0
    assert report["rps"] > 0
    assert 0 < report["p50_us"] <= report["p99_us"]
    assert report["node_pid"] == n.pid
    assert report["workers"] >= 1
    # CPU is counted in clock ticks, so a short run may round to zero, never below.
    assert report["node_cpu_us"] >= 0 and report["workers_cpu_us"] >= 0
    assert report["cpu_us"] == pytest.approx(report["node_cpu_us"] + report["workers_cpu_us"])


def test_app_name_is_resolved_over_control(node):
    n, eps = start_app(node)
    report, proc = bench("basic", "--node", n.control, "--task", "zecho", "--clients", "2")
    assert report["protocol"] == "zeromq"
    assert report["task"] == "zecho"
    assert report["endpoint"] == eps["server"]
    assert report["errors"] == 0 and report["first_error"] is None
    assert report["clients"] == 2 and report["depth"] == 1 and report["size"] == 64
    assert_measured(report, n)
    assert "requests/s" in proc.stdout and "CPU per request" in proc.stdout


def test_native_endpoint_with_depth(node):
    n, eps = start_app(node)
    report, _ = bench(eps["native"], "--protocol", "native", "--clients", "1", "--depth", "8",
                      "--size", "1000")
    assert report["protocol"] == "native" and report["depth"] == 8
    assert report["errors"] == 0
    assert_measured(report, n)


def test_failing_calls_are_counted_as_errors(node):
    n, eps = start_app(node)
    # Native: an event the app has no handler for, so every call ends with 404.
    report, proc = bench(eps["native"], "--protocol", "native", "--event", "no_such_event")
    assert report["errors"] == report["requests"] > 0
    assert "404" in report["first_error"]
    assert "first error: 404" in proc.stdout
    # zeromq-server: a task whose event has no handler either; its error replies are counted.
    report, _ = bench("basic", "--node", n.control, "--task", "missing")
    assert report["protocol"] == "zeromq"
    assert report["errors"] == report["requests"] > 0
    assert '"code":404' in report["first_error"]
    assert n.proc.poll() is None


def test_bad_targets_fail_with_a_message(node):
    n, eps = start_app(node)
    _, proc = bench(eps["server"], check=False)
    assert proc.returncode != 0
    assert "--protocol" in proc.stderr
    _, proc = bench("nosuchapp", "--node", n.control, check=False)
    assert proc.returncode != 0
    assert "404" in proc.stderr
    _, proc = bench("basic", "--node", n.control, "--task", "nope", check=False)
    assert proc.returncode != 0
    assert "no native-server or zeromq-server task" in proc.stderr
