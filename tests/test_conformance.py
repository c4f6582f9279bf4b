"""Every worker SDK in the repository against the conformance kit (adapters/conformance): a
fake node on a real Unix socket drives each SDK's conformance app through every scenario."""

import os
import sys
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "adapters" / "conformance"))

from cocaine_conformance import SCENARIOS, run_one  # noqa: E402

APPS = REPO / "adapters" / "conformance" / "apps"


def rust_worker():
    # scripts/e2e builds it beside the cocaine binary (COCAINE_BIN).
    target = Path(os.environ.get("COCAINE_BIN", REPO / "target" / "debug" / "cocaine")).parent
    return str(target / "cocaine-conformance-worker")


# name -> (argv, env, abilities the SDK lacks)
SDKS = {
    "python": ([sys.executable, "-m", "cocaine.worker", str(APPS / "conformance.py")],
               {"PYTHONPATH": str(REPO / "adapters" / "python")}, set()),
    "python-async": ([sys.executable, "-m", "cocaine.worker", str(APPS / "conformance_async.py")],
                     {"PYTHONPATH": str(REPO / "adapters" / "python")}, set()),
    "javascript": (["node", str(REPO / "adapters" / "javascript" / "bin" / "cocaine-worker.js"),
                    str(APPS / "conformance.js")], {}, set()),
    "perl": (["perl", str(REPO / "adapters" / "perl" / "bin" / "cocaine-worker-perl"),
              str(APPS / "conformance.pl")], {}, set()),
    "rust": ([rust_worker()], {}, set()),
}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_conformance(sdk, scenario):
    argv, env, lacks = SDKS[sdk]
    if scenario.needs & lacks:
        pytest.skip("the %s SDK cannot %s" % (sdk, ", ".join(sorted(scenario.needs & lacks))))
    failure = run_one(scenario, argv, cwd=str(APPS), env=env)
    assert failure is None, failure
