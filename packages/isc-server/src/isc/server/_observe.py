"""What the node does around every handler: metrics, log context and the trace span.

``Observer.call``, ``Observer.listener`` and ``Observer.tick`` start a :class:`Scope` just
before a handler runs; the node ends it with exactly one of ``succeeded``, ``failed`` or
``refused``. Everything here is in-process bookkeeping: nothing blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from isc.core import Notification, Request, fanout_exchange_name, service_queue_name, tracing

from ._logcontext import bind_log_context, unbind_log_context
from ._metrics import NodeMetrics

__all__ = ["Observer", "Scope"]


class Scope:
    """One run of a handler being observed; end it once."""

    __slots__ = ("_kind", "_log_token", "_metrics", "_name", "_service", "_span", "_started")

    def __init__(
        self,
        metrics: NodeMetrics,
        kind: str,
        service: str,
        name: str,
        correlation_id: str,
        span: tracing.SpanScope | None,
    ) -> None:
        self._metrics = metrics
        self._kind = kind
        self._service = service
        self._name = name
        self._span = span
        self._log_token = bind_log_context(service, name, correlation_id)
        self._started = time.perf_counter()

    def succeeded(self) -> None:
        """The handler returned."""
        self._end(None)

    def failed(self, error: BaseException) -> None:
        """The handler raised ``error``."""
        self._end(error)

    def refused(self, error: BaseException, known_method: bool) -> None:
        """The request was refused before running (``known_method``: wrong arguments)."""
        if known_method:
            self._metrics.handler(self._kind, self._service, self._name).refused += 1
        else:
            self._metrics.unknown_method(self._service)
        self._finish(error)

    def _end(self, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - self._started
        stats = self._metrics.handler(self._kind, self._service, self._name)
        stats.observe(elapsed, error is not None)
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        if self._span is not None:
            self._span.end(error)
        unbind_log_context(self._log_token)


class Observer:
    """Starts a :class:`Scope` for each call, notification handler and timer tick."""

    def __init__(self, metrics: NodeMetrics, exchange: str) -> None:
        self.metrics = metrics
        self.exchange = exchange
        self._fanout = fanout_exchange_name(exchange)

    def call(self, service: str, request: Request) -> Scope:
        """Observe the call ``request`` of ``service``."""
        span = None
        if tracing.AVAILABLE:
            span = tracing.start_span(
                f"{service}.{request.method}",
                "server",
                request.headers,
                {
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": self.exchange,
                    "messaging.rabbitmq.destination.routing_key": service_queue_name(
                        self.exchange, service
                    ),
                    "messaging.message.conversation_id": request.correlation_id,
                    "rpc.system": "isc",
                    "rpc.service": service,
                    "rpc.method": request.method,
                },
            )
        return Scope(self.metrics, "methods", service, request.method, request.correlation_id, span)

    def listener(self, listener: Callable[..., Any], notification: Notification) -> Scope:
        """Observe ``listener`` (a service's bound method) handling ``notification``."""
        service, name = handler_name(listener)
        span = None
        if tracing.AVAILABLE:
            span = tracing.start_span(
                f"{notification.event} process",
                "consumer",
                notification.headers,
                {
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": self._fanout,
                    "messaging.message.conversation_id": notification.correlation_id,
                    "isc.event": notification.event,
                    "isc.handler": f"{service}.{name}",
                },
            )
        return Scope(self.metrics, "listeners", service, name, notification.correlation_id, span)

    def tick(self, service: str, name: str) -> Scope:
        """Observe a tick of the timer ``service.name``."""
        span = None
        if tracing.AVAILABLE:
            span = tracing.start_span(
                f"{service}.{name} tick", "internal", None, {"isc.timer": f"{service}.{name}"}
            )
        return Scope(self.metrics, "timers", service, name, "", span)


def handler_name(fn: Callable[..., Any]) -> tuple[str, str]:
    """(service name, method name) of a service's bound method."""
    owner = getattr(fn, "__self__", None)
    service = getattr(owner, "name", None)
    name = getattr(fn, "__name__", None) or repr(fn)
    return (service if isinstance(service, str) else "-"), name
