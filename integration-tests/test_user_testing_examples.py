"""The testing guide's example project (docs/examples/testing) passes as a user would run it.

pytest runs in a subprocess inside the example directory, which has its own ``pytest.ini``
and a ``conftest.py`` that opts in to ``isc.testing.pytest_plugin``. Every example test
must pass: a skipped one (say, the plugin found no broker) fails this test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from isc.testing.pytest_plugin import ENV_AMQP_URL, ENV_REQUIRE_BROKER

pytestmark = [pytest.mark.codec_independent, pytest.mark.tooling]

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "testing"
#: The unit tests (test_*_unit.py: 6 + 1) and the integration tests of the example project.
UNIT_TESTS, INTEGRATION_TESTS = 7, 2


def run_example(*args: str, **env: str) -> str:
    """Run pytest on the example project; return its output. It must pass, with no skips."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ISC_TEST_"))}
    # Without the plugins the suite's environment has and the project does not (anyio's comes
    # with FastAPI and httpx, for docs/asyncio.md's example).
    plugins = ["-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:anyio"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, *args],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        env={**clean, ENV_REQUIRE_BROKER: "1", **env},
        timeout=180,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def summary(output: str) -> str:
    """pytest's last line without the duration: ``8 passed``."""
    last = output.strip().splitlines()[-1]
    return re.sub(r"\s+in [\d.]+s.*$", "", last.strip("= "))


def test_the_example_project_passes_against_the_suites_broker(amqp_url: str) -> None:
    output = run_example(**{ENV_AMQP_URL: amqp_url})
    assert summary(output) == f"{UNIT_TESTS + INTEGRATION_TESTS} passed", output


@pytest.mark.slow
def test_the_plugin_boots_a_throwaway_broker_by_itself() -> None:
    # Without ISC_TEST_AMQP_URL the plugin starts (and stops) a RabbitMQ node of its own.
    output = run_example("test_inventory_integration.py")
    assert summary(output) == f"{INTEGRATION_TESTS} passed", output
