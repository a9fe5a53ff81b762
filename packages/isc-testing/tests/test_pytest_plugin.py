"""isc.testing.pytest_plugin without a broker: it skips, or fails when told to, clearly.

Each case runs pytest in a subprocess on a tiny project that opts in to the plugin, as a user
would. (Its fixtures against a real broker run in integration-tests/test_user_testing_examples.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFTEST = """
pytest_plugins = ["{plugin}"]

from isc.testing import RabbitMQNode

# This machine may have rabbitmq-server: pretend it does not.
RabbitMQNode.available = classmethod(lambda cls, bin_dir=None: False)
"""

TESTS = """
def test_needs_a_broker(isc_amqp_url, isc_exchange):
    raise AssertionError("must not run without a broker")


def test_needs_no_broker():
    pass
"""


def run_pytest(
    tmp_path: Path, plugin: str = "isc.testing.pytest_plugin", **env: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(CONFTEST.format(plugin=plugin))
    (tmp_path / "test_project.py").write_text(TESTS)
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "ISC_TEST_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**clean, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **env},
        timeout=60,
    )


def test_without_rabbitmq_server_broker_tests_are_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout
    assert "rabbitmq-server is not installed" in done.stdout
    assert "set ISC_TEST_AMQP_URL to a running broker" in done.stdout


def test_isc_test_require_broker_turns_the_skip_into_a_failure(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, ISC_TEST_REQUIRE_BROKER="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout
    assert "ISC_TEST_REQUIRE_BROKER is set" in done.stdout


def test_an_unreachable_isc_test_amqp_url_is_an_error_naming_it(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, ISC_TEST_AMQP_URL="amqp://guest:secret@127.0.0.1:1/%2F")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout
    assert "ISC_TEST_AMQP_URL=amqp://guest:***@127.0.0.1:1/%2F does not answer" in done.stdout
    assert "secret" not in done.stdout


def test_the_former_plugin_path_in_isc_client_still_works(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, plugin="isc.client.testing.pytest_plugin")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout
    assert "rabbitmq-server is not installed" in done.stdout


def test_the_former_import_paths_give_the_same_objects() -> None:
    import isc.client.testing
    import isc.client.testing.broker
    import isc.testing

    assert isc.client.testing.RabbitMQNode is isc.testing.RabbitMQNode
    assert isc.client.testing.broker.wait_for_broker is isc.testing.wait_for_broker
    assert "RabbitMQNode" not in isc.client.testing.__all__
