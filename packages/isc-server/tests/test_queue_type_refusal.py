"""RabbitMQ 4.3+ refuses transient non-exclusive queues (isclib 1.x's service queues) by
closing the connection with 541: a ``queue_type="auto"`` node falls back to durable queues,
a ``queue_type="legacy"`` node stops with one clear error.

The refusal is played by the in-memory broker (``deny_transient_queues=True``), which closes
the connection with RabbitMQ 4.3's code and text; the integration suite runs RabbitMQ 3.10,
which allows the queues (docs/reliability.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from isc.client import Client
from isc.client.testing.memory import MemoryBroker
from isc.core import ConfigurationError
from isc.server import Node, expose


class Calc:
    name = "calc"

    @expose
    def add(self, a: int, b: int) -> int:
        return a + b


def _start(node: Node) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            node.run()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


@pytest.fixture
def refusing_broker() -> Iterator[MemoryBroker]:
    broker = MemoryBroker(deny_transient_queues=True)
    yield broker
    broker.close()


def test_the_stand_in_refuses_like_rabbitmq_4_3(refusing_broker: MemoryBroker) -> None:
    node = Node(exchange="q43", transport=refusing_broker.transport, queue_type="legacy")
    node.register_service(Calc())
    closes: list[BaseException] = []
    node._on_channel_error = lambda reason: bool(closes.append(reason))  # type: ignore[method-assign]
    worker = node._open_transport()
    try:
        assert not node.wait_for_ready(0.3)
        assert closes, "the refusal never reached the node"
        reason = closes[0]
        assert getattr(reason, "reply_code", None) == 541
        assert "transient_nonexcl_queues" in str(getattr(reason, "reply_text", ""))
    finally:
        worker.stop()


def test_auto_falls_back_to_durable_queues_with_one_line(
    refusing_broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="isc")
    node = Node(exchange="q43", transport=refusing_broker.transport, drain_timeout=1)
    assert node.queue_type == "auto"  # the default
    node.register_service(Calc())
    thread, raised = _start(node)
    try:
        assert node.wait_for_ready(5), "the node never served on a broker refusing transient queues"
        assert node.declared_queue_type == "durable"
        assert refusing_broker._queues["q43_service_calc"].durable
        with Client(exchange="q43", transport=refusing_broker.transport) as client:
            assert client.calc.add(2, 3) == 5
    finally:
        node.stop()
        thread.join(5)
    assert not raised
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, [r.getMessage() for r in loud]
    assert "declaring them durable instead" in loud[0].getMessage()


def test_auto_keeps_isclib_1x_queues_where_the_broker_allows_them() -> None:
    broker = MemoryBroker()
    node = Node(exchange="q3", transport=broker.transport, drain_timeout=1)
    node.register_service(Calc())
    thread, _raised = _start(node)
    try:
        assert node.wait_for_ready(5)
        queue = broker._queues["q3_service_calc"]
        assert (queue.durable, queue.exclusive, queue.auto_delete) == (False, False, False)
        assert node.declared_queue_type == "legacy"
    finally:
        node.stop()
        thread.join(5)
        broker.close()


def test_explicit_legacy_stops_the_node_with_one_error(
    refusing_broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="isc")
    node = Node(
        exchange="q43", transport=refusing_broker.transport, queue_type="legacy", drain_timeout=1
    )
    node.register_service(Calc())
    thread, raised = _start(node)
    thread.join(10)
    assert not thread.is_alive(), "the node kept retrying a declaration the broker refuses"
    assert len(raised) == 1
    assert isinstance(raised[0], ConfigurationError)
    assert "deprecated_features.permit.transient_nonexcl_queues = true" in str(raised[0])
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
