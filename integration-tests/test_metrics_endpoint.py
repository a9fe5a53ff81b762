"""``isc run --metrics-port``: Prometheus scrapes /metrics; Kubernetes probes /healthz, /readyz."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from isc.client import Client
from isc.core import RemoteException
from isc_testing import free_port, wait_for
from isc_testing.nodes import SERVICES_DIR, NodeProcess

pytestmark = pytest.mark.codec_independent


def get(url: str) -> tuple[int, str]:
    """GET ``url``: (status, body); (0, reason) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError) as error:
        return 0, str(error)


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    status, text = get(f"{base}/metrics")
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def handler(service: str, name: str, kind: str = "method") -> tuple[tuple[str, str], ...]:
    return (("handler", name), ("kind", kind), ("service", service))


def isc_run(url: str, exchange: str, port: int, *extra: str) -> NodeProcess:
    """``isc run calc:Calc --metrics-port PORT``, ready once ``/healthz`` answers."""
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "isc.client.cli", "run", "calc:Calc"]
    return NodeProcess(
        [*argv, "--url", url, "--exchange", exchange, "--metrics-port", str(port), *extra],
        ready_probe=lambda: get(f"{base}/healthz")[0] == 200,
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_prometheus_scrapes_the_node_and_the_probes_follow_it(amqp_url: str, exchange: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    node = isc_run(amqp_url, exchange, port, "--drain-timeout", "20")
    with node, Client(amqp_url, exchange=exchange, invoke_timeout=10) as client:
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, timeout=20)
        for i in range(3):
            assert client.calc.add(i, 1) == i + 1
        with pytest.raises(RemoteException):
            client.calc.raise_error()
        with pytest.raises(RemoteException):
            client.calc.add(1, 2, 3, 4)  # wrong arguments: refused
        with pytest.raises(RemoteException):
            client.calc.no_such_method()

        samples = scrape(base)
        assert samples["isc_handler_calls_total", handler("calc", "add")] == 3
        assert samples["isc_handler_errors_total", handler("calc", "add")] == 0
        assert samples["isc_handler_refused_total", handler("calc", "add")] == 1
        assert samples["isc_handler_calls_total", handler("calc", "raise_error")] == 1
        assert samples["isc_handler_errors_total", handler("calc", "raise_error")] == 1
        add = handler("calc", "add")
        assert samples["isc_handler_duration_seconds_count", add] == 3
        every = tuple(sorted((*add, ("le", "+Inf"))))
        assert samples["isc_handler_duration_seconds_bucket", every] == 3
        assert 0 < samples["isc_handler_duration_seconds_sum", add] < 10
        assert samples["isc_unknown_method_requests_total", (("service", "calc"),)] == 1
        assert samples["isc_dropped_messages_total", (("reason", "bad_requests"),)] == 0
        assert samples["isc_node_ready", ()] == 1
        assert ("process_start_time_seconds", ()) in samples  # prometheus_client's own

        # Stopping: not ready at once (no new traffic), alive while the call in flight drains.
        slow = client.calc.slow_method.call_async(5)
        wait_for(lambda: client.calc.running() == 1, timeout=10)
        os.kill(node.pid, signal.SIGTERM)
        wait_for(lambda: get(f"{base}/readyz")[0] == 503, timeout=5)
        assert get(f"{base}/healthz") == (200, "alive\n")
        assert scrape(base)["isc_node_ready", ()] == 0
        assert slow.result(20) == 5
        assert node.stop() == 0
    assert get(f"{base}/healthz")[0] == 0  # gone with the node
    assert f"serving metrics on http://0.0.0.0:{port}/metrics" in node.output


def test_not_ready_until_connected(closed_port: int, exchange: str) -> None:
    """A node that cannot reach its broker is alive (it keeps trying) but not ready."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"amqp://guest:guest@127.0.0.1:{closed_port}/"
    with isc_run(url, exchange, port) as node:
        assert get(f"{base}/readyz") == (503, "not ready\n")
        assert get(f"{base}/healthz") == (200, "alive\n")
        assert scrape(base)["isc_node_ready", ()] == 0
        assert node.stop() == 0


def test_a_taken_metrics_port_fails_the_start(amqp_url: str, exchange: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SERVICES_DIR), *sys.path]))
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                *("-m", "isc.client.cli", "run", "calc:Calc"),
                *("--url", amqp_url, "--exchange", exchange, "--metrics-port", str(port)),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot start the node: cannot serve metrics on 0.0.0.0:{port}" in done.stderr
