"""Optional OpenTelemetry trace propagation through isc message headers.

When ``opentelemetry-api`` is installed (``pip install "isc-client[otel]"`` /
``"isc-server[otel]"``), clients write the current trace context into the headers of their
requests and notifications (W3C ``traceparent`` and ``tracestate``, through the configured
propagator), and nodes continue that trace: each call, notification handler and timer tick runs
in a span. Without ``opentelemetry-api`` every function here does nothing and nothing is
imported. isc uses only the API: which SDK and exporter record the spans is the
application's choice (without an SDK, spans cost almost nothing and go nowhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from ._version import __version__

try:
    from opentelemetry import context as _context
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
    from opentelemetry.propagators.textmap import Getter as _Getter

    #: True when ``opentelemetry-api`` is installed, so isc propagates traces.
    AVAILABLE = True
except ImportError:  # the optional extra is not installed: tracing is off
    AVAILABLE = False

__all__ = ["AVAILABLE", "SpanScope", "inject", "start_span"]

#: Span kinds by name (so callers need not import OpenTelemetry).
KINDS = ("server", "consumer", "internal")


def inject(headers: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Write the current trace context into ``headers`` (nothing without OpenTelemetry)."""
    if AVAILABLE:
        _propagate.inject(headers)
    return headers


class SpanScope:
    """A span that is current until :meth:`end`: the handler's own calls continue its trace."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Any, token: object) -> None:
        self._span = span
        self._token = token

    def end(self, error: BaseException | None = None) -> None:
        """End the span (marked as failed with ``error``, if given) and make it not current."""
        span = self._span
        if error is not None:
            span.record_exception(error)
            span.set_status(_trace.Status(_trace.StatusCode.ERROR, f"{type(error).__name__}"))
        span.end()
        _context.detach(self._token)  # type: ignore[arg-type]


if AVAILABLE:

    class _HeaderGetter(_Getter[Mapping[str, Any]]):
        """Reads AMQP headers, whose strings pika may hand over as bytes."""

        def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
            value = carrier.get(key)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            return [value] if isinstance(value, str) else None

        def keys(self, carrier: Mapping[str, Any]) -> list[str]:
            return list(carrier)

    _GETTER = _HeaderGetter()
    _SPAN_KINDS = {
        "server": _trace.SpanKind.SERVER,
        "consumer": _trace.SpanKind.CONSUMER,
        "internal": _trace.SpanKind.INTERNAL,
    }
    _TRACER: Any = None


def start_span(
    name: str,
    kind: str,
    headers: Mapping[str, Any] | None,
    attributes: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
) -> SpanScope | None:
    """Start a span continuing the trace in ``headers`` and make it current.

    ``kind`` is one of :data:`KINDS`. Returns None without OpenTelemetry; otherwise call
    :meth:`SpanScope.end` when the work is done.
    """
    if not AVAILABLE:
        return None
    global _TRACER
    if _TRACER is None:  # a proxy until the application sets a tracer provider, then real
        _TRACER = _trace.get_tracer("isc", __version__)
    parent = _propagate.extract(headers, getter=_GETTER) if headers else None
    span = _TRACER.start_span(
        name, context=parent, kind=_SPAN_KINDS[kind], attributes=dict(attributes)
    )
    token = _context.attach(_trace.set_span_in_context(span, parent))
    return SpanScope(span, token)
