"""The node's observer: metrics, log context and OpenTelemetry spans around each handler.

Spans are recorded by the OpenTelemetry SDK's in-memory exporter (the SDK is a test
dependency only; isc itself uses just the API).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from isc.core import Notification, Request, tracing
from isc.server import NodeMetrics
from isc.server._logcontext import log_context
from isc.server._observe import Observer

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def tracer_provider() -> None:
    """The process's tracer provider (settable once per process: this module owns it)."""
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def observer() -> Observer:
    return Observer(NodeMetrics(), "x")


def only_span(exporter: InMemorySpanExporter) -> Any:
    finished = exporter.get_finished_spans()
    assert len(finished) == 1, finished
    return finished[0]


def test_a_call_continues_the_callers_trace(
    observer: Observer, spans: InMemorySpanExporter
) -> None:
    request = Request("add", (1, 2), correlation_id="cid-1", headers={"traceparent": TRACEPARENT})
    scope = observer.call("calc", request)
    assert log_context() == ("calc", "add", "cid-1")
    # what the handler's own calls send: the same trace, with the server span as parent
    inner = tracing.inject({})
    scope.succeeded()
    assert log_context() is None

    span = only_span(spans)
    assert span.name == "calc.add"
    assert span.kind is trace.SpanKind.SERVER
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None
    assert span.parent.span_id == PARENT_ID
    assert span.attributes["messaging.system"] == "rabbitmq"
    assert span.attributes["messaging.destination.name"] == "x"
    assert span.attributes["messaging.rabbitmq.destination.routing_key"] == "x_service_calc"
    assert span.attributes["messaging.message.conversation_id"] == "cid-1"
    assert span.attributes["rpc.method"] == "add"
    assert span.status.status_code is trace.StatusCode.UNSET
    assert inner["traceparent"] == f"00-{TRACE_ID:032x}-{span.context.span_id:016x}-01"

    stats = observer.metrics.snapshot("calc")["methods"]["add"]
    assert (stats["calls"], stats["errors"], stats["refused"]) == (1, 0, 0)


def test_bytes_headers_are_read_too(observer: Observer, spans: InMemorySpanExporter) -> None:
    request = Request("add", headers={"traceparent": TRACEPARENT.encode()})
    observer.call("calc", request).succeeded()
    assert only_span(spans).context.trace_id == TRACE_ID


def test_without_a_caller_trace_a_call_starts_one(
    observer: Observer, spans: InMemorySpanExporter
) -> None:
    observer.call("calc", Request("add")).succeeded()
    span = only_span(spans)
    assert span.parent is None
    assert span.context.trace_id != TRACE_ID


def test_a_failed_call_marks_its_span(observer: Observer, spans: InMemorySpanExporter) -> None:
    observer.call("calc", Request("boom")).failed(ValueError("no"))
    span = only_span(spans)
    assert span.status.status_code is trace.StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    stats = observer.metrics.snapshot("calc")["methods"]["boom"]
    assert (stats["calls"], stats["errors"]) == (1, 1)


def test_refused_calls(observer: Observer, spans: InMemorySpanExporter) -> None:
    observer.call("calc", Request("add")).refused(TypeError("wrong"), known_method=True)
    observer.call("calc", Request("nope")).refused(AttributeError("nope"), known_method=False)
    snapshot = observer.metrics.snapshot("calc")
    assert snapshot["methods"]["add"]["refused"] == 1
    assert snapshot["methods"]["add"]["calls"] == 0
    assert set(snapshot["methods"]) == {"add"}
    assert snapshot["unknown_methods"] == 1
    assert [s.status.status_code for s in spans.get_finished_spans()] == [
        trace.StatusCode.ERROR
    ] * 2


class Service:
    name = "events"

    def record(self, *args: Any) -> None:
        pass


def test_a_listener_runs_in_a_consumer_span(
    observer: Observer, spans: InMemorySpanExporter
) -> None:
    notification = Notification("bang", (1,), correlation_id="n-1")
    notification.headers["traceparent"] = TRACEPARENT
    scope = observer.listener(Service().record, notification)
    assert log_context() == ("events", "record", "n-1")
    scope.succeeded()
    span = only_span(spans)
    assert span.kind is trace.SpanKind.CONSUMER
    assert span.name == "bang process"
    assert span.context.trace_id == TRACE_ID
    assert span.attributes["messaging.destination.name"] == "x_fanout"
    assert span.attributes["isc.handler"] == "events.record"
    assert observer.metrics.snapshot("events")["listeners"]["record"]["calls"] == 1


def test_a_timer_tick(observer: Observer, spans: InMemorySpanExporter) -> None:
    scope = observer.tick("events", "tick")
    assert log_context() == ("events", "tick", "")
    scope.failed(RuntimeError("tick"))
    assert only_span(spans).kind is trace.SpanKind.INTERNAL
    stats = observer.metrics.snapshot("events")["timers"]["tick"]
    assert (stats["calls"], stats["errors"]) == (1, 1)
