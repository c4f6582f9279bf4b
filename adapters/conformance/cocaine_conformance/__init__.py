"""The worker SDK conformance kit: a fake node on a real Unix socket and a table of scenarios
that any worker command must pass. See `python3 -m cocaine_conformance --help`."""

from .fakenode import FakeNode, Failure
from .scenarios import SCENARIOS, run

__all__ = ["FakeNode", "Failure", "SCENARIOS", "run", "run_one"]


def run_one(scenario, command, cwd=None, env=None):
    """Runs `scenario` against a worker started as `command` (argv); None or the failure."""
    nodes = []

    def start(env=None, socket_path=None, base_env=env):
        merged = dict(base_env or {})
        merged.update(env or {})
        node = FakeNode(command, env=merged, cwd=cwd, socket_path=socket_path)
        nodes.append(node)
        return node

    try:
        return run(scenario, start)
    finally:
        for node in nodes:
            node.close()
