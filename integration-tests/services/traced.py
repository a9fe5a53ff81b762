"""A service whose node records OpenTelemetry spans in memory, for the tracing tests.

Importing this module installs the OpenTelemetry SDK as the node process's tracer provider
(the SDK is a test dependency: isc itself uses only opentelemetry-api).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from isc.client import Client
from isc.server import expose, on

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)


class Traced:
    """Calls another service and listens for an event, so its spans form a trace."""

    name = "traced"

    def __init__(self) -> None:
        self.client = Client(os.environ["ISC_URL"], exchange=os.environ["ISC_EXCHANGE"])

    @expose
    def add_via_calc(self, a: Any, b: Any) -> Any:
        return self.client.calc.add(a, b)

    @on("traced-event")
    def on_traced_event(self, value: Any) -> None:
        pass

    @expose
    def spans(self) -> list[list[Any]]:
        """[name, kind, trace id, span id, parent span id or None] of every finished span."""
        return [
            [
                span.name,
                span.kind.name,
                f"{span.context.trace_id:032x}",
                f"{span.context.span_id:016x}",
                f"{span.parent.span_id:016x}" if span.parent else None,
            ]
            for span in EXPORTER.get_finished_spans()
        ]
