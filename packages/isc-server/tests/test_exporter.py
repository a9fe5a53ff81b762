"""The Prometheus collector over NodeMetrics, and the HTTP endpoint of metrics and probes."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import gevent
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from isc.client import Client
from isc.client.testing import wait_for
from isc.client.testing.memory import MemoryBroker
from isc.core import ConfigurationError, RemoteException
from isc.server import MetricsServer, Node, NodeMetrics, expose, serve_metrics
from isc.server._prometheus import NodeCollector


def _registry(metrics: NodeMetrics, ready: bool | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NodeCollector(metrics, None if ready is None else (lambda: ready)))
    return registry


def _labels(service: str, handler: str, kind: str = "method") -> dict[str, str]:
    return {"service": service, "handler": handler, "kind": kind}


class TestNodeCollector:
    def test_counters_of_each_handler(self) -> None:
        metrics = NodeMetrics()
        metrics.method("calc", "add").observe(0.001)
        metrics.method("calc", "add").observe(0.002, failed=True)
        metrics.method("calc", "add").refused += 1
        metrics.handler("listeners", "calc", "on_added").observe(0.01)
        metrics.handler("timers", "calc", "tick").observe(0.1, failed=True)
        registry = _registry(metrics)
        value = registry.get_sample_value
        assert value("isc_handler_calls_total", _labels("calc", "add")) == 2
        assert value("isc_handler_errors_total", _labels("calc", "add")) == 1
        assert value("isc_handler_refused_total", _labels("calc", "add")) == 1
        assert value("isc_handler_calls_total", _labels("calc", "on_added", "listener")) == 1
        assert value("isc_handler_errors_total", _labels("calc", "tick", "timer")) == 1
        # refused is a method's counter only: listeners and timers are never refused
        assert value("isc_handler_refused_total", _labels("calc", "tick", "timer")) is None

    def test_latencies_are_a_cumulative_histogram(self) -> None:
        metrics = NodeMetrics(buckets=(0.5, 2))
        for seconds in (0.1, 0.5, 1.0, 3.0):
            metrics.method("calc", "add").observe(seconds)
        value = _registry(metrics).get_sample_value
        bucket = "isc_handler_duration_seconds_bucket"
        assert value(bucket, {**_labels("calc", "add"), "le": "0.5"}) == 2  # 0.1 and 0.5 (<=)
        assert value(bucket, {**_labels("calc", "add"), "le": "2.0"}) == 3
        assert value(bucket, {**_labels("calc", "add"), "le": "+Inf"}) == 4
        assert value("isc_handler_duration_seconds_count", _labels("calc", "add")) == 4
        assert value("isc_handler_duration_seconds_sum", _labels("calc", "add")) == 4.6
        assert value("isc_handler_duration_max_seconds", _labels("calc", "add")) == 3.0

    def test_node_wide_counters_and_state(self) -> None:
        metrics = NodeMetrics()
        metrics.count("bad_requests")
        metrics.count("bad_requests")
        metrics.unknown_method("calc")
        value = _registry(metrics, ready=True).get_sample_value
        assert value("isc_dropped_messages_total", {"reason": "bad_requests"}) == 2
        assert value("isc_dropped_messages_total", {"reason": "orphaned_requests"}) == 0
        assert value("isc_unknown_method_requests_total", {"service": "calc"}) == 1
        assert value("isc_node_start_time_seconds") == metrics.since
        assert value("isc_node_ready") == 1
        assert _registry(metrics, ready=False).get_sample_value("isc_node_ready") == 0
        assert _registry(metrics).get_sample_value("isc_node_ready") is None

    def test_reads_the_numbers_at_scrape_time(self) -> None:
        metrics = NodeMetrics()
        registry = _registry(metrics)
        assert registry.get_sample_value("isc_handler_calls_total", _labels("c", "m")) is None
        metrics.method("c", "m").observe(0.1)
        assert registry.get_sample_value("isc_handler_calls_total", _labels("c", "m")) == 1
        metrics.method("c", "m").observe(0.1)
        assert registry.get_sample_value("isc_handler_calls_total", _labels("c", "m")) == 2

    def test_the_exposition_parses_back(self) -> None:
        metrics = NodeMetrics()
        metrics.method("calc", 'we"ird\\name').observe(0.003)
        text = generate_latest(_registry(metrics, ready=True)).decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert families["isc_handler_calls"].type == "counter"
        assert families["isc_handler_duration_seconds"].type == "histogram"
        assert families["isc_node_ready"].type == "gauge"
        (sample,) = families["isc_handler_calls"].samples
        assert sample.labels == _labels("calc", 'we"ird\\name')

    def test_describe_names_every_family_without_samples(self) -> None:
        described = list(NodeCollector(NodeMetrics()).describe())
        assert {m.name for m in described} >= {"isc_handler_calls", "isc_dropped_messages"}
        assert all(not m.samples for m in described)


# -- the HTTP endpoint ------------------------------------------------------------------------


class StubNode:
    """A node as the endpoint sees it: metrics, liveness, readiness."""

    def __init__(self) -> None:
        self.metrics = NodeMetrics()
        self.alive = True
        self.ready = False

    def is_alive(self) -> bool:
        return self.alive

    def is_ready(self) -> bool:
        return self.ready


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def stub_served() -> Iterator[tuple[StubNode, MetricsServer]]:
    node = StubNode()
    server = serve_metrics(node, 0, "127.0.0.1", registry=CollectorRegistry())
    try:
        yield node, server
    finally:
        server.stop()


class TestEndpoint:
    def test_probes_follow_the_node(self, stub_served: tuple[StubNode, MetricsServer]) -> None:
        node, server = stub_served
        assert _get(f"{server.url}/healthz") == (200, "alive\n")
        assert _get(f"{server.url}/readyz") == (503, "not ready\n")
        node.ready = True
        assert _get(f"{server.url}/readyz") == (200, "ready\n")
        node.alive = node.ready = False
        assert _get(f"{server.url}/healthz") == (503, "not running\n")

    def test_metrics_and_not_found(self, stub_served: tuple[StubNode, MetricsServer]) -> None:
        node, server = stub_served
        node.metrics.method("calc", "add").observe(0.01)
        status, text = _get(f"{server.url}/metrics")
        assert status == 200
        assert 'isc_handler_calls_total{handler="add",kind="method",service="calc"} 1.0' in text
        assert "isc_node_ready 0.0" in text
        status, text = _get(f"{server.url}/")
        assert status == 404
        assert "/metrics" in text

    def test_serves_the_given_registry_alongside(self) -> None:
        registry = CollectorRegistry()
        Counter("app_widgets", "Widgets made.", registry=registry).inc(3)
        server = serve_metrics(StubNode(), 0, "127.0.0.1", registry=registry)
        try:
            status, text = _get(f"{server.url}/metrics")
        finally:
            server.stop()
        assert status == 200
        assert "app_widgets_total 3.0" in text
        assert "isc_node_start_time_seconds" in text

    def test_the_global_registry_by_default(self) -> None:
        server = serve_metrics(StubNode(), 0, "127.0.0.1")
        try:
            _status, text = _get(f"{server.url}/metrics")
        finally:
            server.stop()
        assert "python_info" in text  # prometheus_client's default collectors

    def test_a_taken_port_is_a_configuration_error(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(ConfigurationError, match=f"cannot serve metrics on .*:{port}"):
                serve_metrics(StubNode(), port, "127.0.0.1")

    def test_a_scrape_does_not_wait_for_a_busy_handler(
        self, stub_served: tuple[StubNode, MetricsServer]
    ) -> None:
        _node, server = stub_served
        busy = gevent.spawn(gevent.sleep, 30)  # another greenlet parked on the hub
        try:
            assert _get(f"{server.url}/healthz")[0] == 200
        finally:
            busy.kill()


# -- Node(metrics_port=...) -------------------------------------------------------------------


class Slow:
    name = "slow"

    def __init__(self) -> None:
        self.release = gevent.event.Event()

    @expose
    def add(self, a: int, b: int) -> int:
        return a + b

    @expose
    def wait(self) -> str:
        self.release.wait(10)
        return "done"

    @expose
    def fail(self) -> None:
        raise ValueError("no")


def test_a_node_serves_its_metrics_and_probes() -> None:
    broker = MemoryBroker()
    service = Slow()
    node = Node(
        exchange="mem",
        transport=broker.transport,
        drain_timeout=5,
        metrics_port=0,
        metrics_host="127.0.0.1",
    )
    node.register_service(service)
    assert not node.is_alive()
    assert not node.is_ready()
    thread = threading.Thread(target=node.run, daemon=True)
    thread.start()
    assert node.wait_for_ready(5)
    server = node.metrics_server
    assert server is not None
    assert _get(f"{server.url}/readyz") == (200, "ready\n")
    client = Client(exchange="mem", transport=broker.transport)
    try:
        assert client.slow.add(1, 2) == 3
        with pytest.raises(RemoteException):
            client.slow.fail()
        _status, text = _get(f"{server.url}/metrics")
        assert 'isc_handler_calls_total{handler="add",kind="method",service="slow"} 1.0' in text
        assert 'isc_handler_errors_total{handler="fail",kind="method",service="slow"} 1.0' in text
        assert "isc_node_ready 1.0" in text

        waiting = client.slow.wait.call_async()
        wait_for(lambda: len(node._pool) == 1, timeout=5)
        stopper = threading.Thread(target=node.stop)
        stopper.start()  # drains: the call in flight holds the stop
        wait_for(lambda: _get(f"{server.url}/readyz")[0] == 503, timeout=5)
        assert not node.is_ready()
        assert _get(f"{server.url}/healthz") == (200, "alive\n")  # draining is alive
        service.release.set()
        assert waiting.result(5) == "done"
        stopper.join(10)
        thread.join(10)
    finally:
        client.stop()
        node.stop()
    assert not node.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{server.url}/healthz", timeout=2)


def test_is_alive_is_false_once_the_connection_loop_ends_unexpectedly() -> None:
    broker = MemoryBroker()
    node = Node(exchange="mem", transport=broker.transport)
    node.register_service(Slow())
    thread = threading.Thread(target=node.run, daemon=True)
    thread.start()
    try:
        assert node.wait_for_ready(5)
        assert node.is_alive()
        assert node._worker is not None
        node._worker.stop()  # the loop ends without node.stop()
        assert not node.is_alive()
    finally:
        node.stop()
        thread.join(10)


@pytest.mark.parametrize("port", [-1, 65536, "9100", 1.5])
def test_metrics_port_is_checked(port: object) -> None:
    with pytest.raises(ConfigurationError, match="metrics_port must be a port number"):
        Node(metrics_port=port)  # type: ignore[arg-type]


def test_without_prometheus_client_metrics_port_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    Node()  # a node without metrics needs nothing more
    with pytest.raises(ConfigurationError, match=r"pip install 'isc-server\[prometheus\]'"):
        Node(metrics_port=9100)
    with pytest.raises(ConfigurationError, match="needs prometheus-client"):
        serve_metrics(StubNode(), 0)


def test_importing_isc_server_does_not_import_prometheus_client() -> None:
    code = "import sys, isc.server; assert 'prometheus_client' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
