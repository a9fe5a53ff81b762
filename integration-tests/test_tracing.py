"""OpenTelemetry through a real node: a caller's trace continues in the node's spans."""

from __future__ import annotations

from typing import Any

import pytest

from isc.client import Client
from isc_testing import wait_for
from isc_testing.nodes import NodeProcess

pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace import TracerProvider

pytestmark = pytest.mark.codec_independent


def test_a_call_and_a_notification_continue_the_callers_trace(amqp_url: str, exchange: str) -> None:
    # A provider of the test's own (not the process-wide one): its spans need no exporter.
    tracer = TracerProvider().get_tracer("test")
    with (
        NodeProcess.serve(amqp_url, exchange, "traced:Traced", "calc:Calc"),
        Client(amqp_url, exchange=exchange, invoke_timeout=10) as client,
    ):
        with tracer.start_as_current_span("caller") as caller:
            assert client.traced.add_via_calc(2, 3) == 5
            client.notify("traced-event", 1)
        trace_id = f"{caller.get_span_context().trace_id:032x}"
        caller_id = f"{caller.get_span_context().span_id:016x}"

        def recorded() -> dict[str, Any] | None:
            spans = {name: rest for name, *rest in client.traced.spans()}
            return spans if "traced-event process" in spans else None

        spans = wait_for(recorded, timeout=10, message="the node's spans")

    relay_kind, relay_trace, relay_id, relay_parent = spans["traced.add_via_calc"]
    assert (relay_kind, relay_trace, relay_parent) == ("SERVER", trace_id, caller_id)
    # the node's own client carried the trace on, from inside the handler's span
    assert spans["calc.add"] == ["SERVER", trace_id, spans["calc.add"][2], relay_id]
    event_kind, event_trace, _, event_parent = spans["traced-event process"]
    assert (event_kind, event_trace, event_parent) == ("CONSUMER", trace_id, caller_id)
