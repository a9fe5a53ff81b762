"""isc.core.tracing: trace context into and out of message headers (opentelemetry-api only)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from isc.core import Envelope, JSONCodec, Notification, Request, tracing

trace = pytest.importorskip("opentelemetry.trace")
from opentelemetry import context  # noqa: E402

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


def current_span_context() -> trace.SpanContext:
    return trace.SpanContext(
        TRACE_ID, SPAN_ID, is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
    )


def test_available_with_opentelemetry_installed() -> None:
    assert tracing.AVAILABLE


def test_inject_writes_the_current_span_as_traceparent() -> None:
    span = trace.NonRecordingSpan(current_span_context())
    token = context.attach(trace.set_span_in_context(span))
    try:
        headers = tracing.inject({"x-isc-version": 2})
    finally:
        context.detach(token)
    assert headers == {"x-isc-version": 2, "traceparent": TRACEPARENT}


def test_inject_without_a_current_span_writes_nothing() -> None:
    assert tracing.inject({}) == {}


def test_headers_travel_in_requests_and_notifications() -> None:
    codec = JSONCodec()
    request = Request("add", (1, 2), headers={"traceparent": TRACEPARENT})
    assert Request.decode(request.encode(codec), codec).headers["traceparent"] == TRACEPARENT
    notification = Notification("evt", (1,), headers={"traceparent": TRACEPARENT})
    envelope = notification.encode(codec)
    assert envelope.headers["traceparent"] == TRACEPARENT
    assert envelope.headers["x-isc-version"] == 2
    assert Notification.decode(envelope, codec).headers["traceparent"] == TRACEPARENT
    bare = Envelope(body=envelope.body, content_type="json")  # an isclib 1.x notification
    assert Notification.decode(bare, codec).headers == {}


def test_start_span_continues_the_trace_in_the_headers() -> None:
    # Without an SDK the span records nothing, but it carries the caller's trace on.
    scope = tracing.start_span("calc.add", "server", {"traceparent": TRACEPARENT})
    assert scope is not None
    try:
        current = trace.get_current_span().get_span_context()
        assert current.trace_id == TRACE_ID
        assert tracing.inject({})["traceparent"].startswith(f"00-{TRACE_ID:032x}-")
    finally:
        scope.end(ValueError("recorded on the span"))
    assert not trace.get_current_span().get_span_context().is_valid


def test_start_span_ignores_a_malformed_traceparent() -> None:
    scope = tracing.start_span("calc.add", "consumer", {"traceparent": "garbage", "n": 1})
    assert scope is not None
    scope.end()


def test_without_opentelemetry_everything_is_a_no_op() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
        from isc.core import tracing
        assert not tracing.AVAILABLE
        assert tracing.inject({"a": 1}) == {"a": 1}
        assert tracing.start_span("calc.add", "server", {"traceparent": "x"}) is None
        loaded = [name for name, module in sys.modules.items() if module is not None]
        assert not any(name.startswith("opentelemetry") for name in loaded)
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
