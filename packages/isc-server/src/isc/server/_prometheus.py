"""A node's :class:`NodeMetrics` in Prometheus' terms, read at scrape time.

The collector keeps no numbers of its own: each scrape walks the node's live counters and
histograms and turns them into metric families, so serving metrics adds nothing to the cost
of a call. It runs on the node's gevent hub, like the handlers that update the numbers, and
switches to no other greenlet while it reads them: a scrape sees one consistent state.

This module imports ``prometheus_client`` (the ``prometheus`` extra of isc-server); nothing
imports it unless metrics are served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from ._metrics import NodeMetrics

__all__ = ["KIND_LABELS", "NodeCollector"]

#: The ``kind`` label of each kind of handler NodeMetrics keeps.
KIND_LABELS = {"methods": "method", "listeners": "listener", "timers": "timer"}

_HANDLER_LABELS = ("service", "handler", "kind")


class NodeCollector:
    """Collects a :class:`NodeMetrics` for a ``prometheus_client`` registry.

    ``ready`` (optional) answers whether the node is ready; it becomes ``isc_node_ready``.
    """

    def __init__(self, metrics: NodeMetrics, ready: Callable[[], bool] | None = None) -> None:
        self.metrics = metrics
        self.ready = ready

    def describe(self) -> Iterator[Metric]:
        """The families this collector yields, without samples (for name-clash checks)."""
        return iter(_Families().all(ready=True))

    def collect(self) -> Iterator[Metric]:
        """The node's numbers as they are now."""
        families = _Families()
        les = [_go_float(bound) for bound in self.metrics.bounds] + ["+Inf"]
        for kind, service, name, stats in self.metrics.handlers():
            labels = [service, name, KIND_LABELS[kind]]
            families.calls.add_metric(labels, stats.calls)
            families.errors.add_metric(labels, stats.errors)
            if kind == "methods":
                families.refused.add_metric(labels, stats.refused)
            cumulative, buckets = 0, []
            for le, count in zip(les, stats.buckets):
                cumulative += count
                buckets.append((le, float(cumulative)))
            families.duration.add_metric(labels, buckets, stats.seconds)
            families.longest.add_metric(labels, stats.longest)
        for service, count in sorted(self.metrics.unknown_methods().items()):
            families.unknown.add_metric([service], count)
        for reason, count in self.metrics.counters.items():
            families.dropped.add_metric([reason], count)
        families.start.add_metric([], self.metrics.since)
        if self.ready is not None:
            families.ready.add_metric([], 1.0 if self.ready() else 0.0)
        return iter(families.all(ready=self.ready is not None))


#: Go's formatting of a float, which Prometheus uses for ``le`` labels ("0.5", "5e-05").
_go_float: Callable[[float], str] = floatToGoString


class _Families:
    """One scrape's metric families, empty until filled."""

    def __init__(self) -> None:
        self.calls = CounterMetricFamily(
            "isc_handler_calls",
            "Runs of a handler (an exposed method, @on listener or timer), failed ones too.",
            labels=_HANDLER_LABELS,
        )
        self.errors = CounterMetricFamily(
            "isc_handler_errors", "Runs of a handler that raised.", labels=_HANDLER_LABELS
        )
        self.refused = CounterMetricFamily(
            "isc_handler_refused",
            "Requests for an exposed method refused before running: wrong arguments.",
            labels=_HANDLER_LABELS,
        )
        self.duration = HistogramMetricFamily(
            "isc_handler_duration_seconds",
            "How long the runs of a handler took.",
            labels=_HANDLER_LABELS,
        )
        self.longest = GaugeMetricFamily(
            "isc_handler_duration_max_seconds",
            "The longest run of a handler since the node started.",
            labels=_HANDLER_LABELS,
        )
        self.unknown = CounterMetricFamily(
            "isc_unknown_method_requests",
            "Requests for a method of the service that is missing or not exposed.",
            labels=("service",),
        )
        self.dropped = CounterMetricFamily(
            "isc_dropped_messages",
            "Messages the node could not serve normally, by reason (see the guide).",
            labels=("reason",),
        )
        self.start = GaugeMetricFamily(
            "isc_node_start_time_seconds",
            "When the node started counting, in seconds since the Unix epoch.",
        )
        self.ready = GaugeMetricFamily(
            "isc_node_ready", "1 while the node is connected and consuming its queues, else 0."
        )

    def all(self, ready: bool) -> list[Metric]:
        """Every family (``isc_node_ready`` only if ``ready``)."""
        families: list[Metric] = [
            self.calls,
            self.errors,
            self.refused,
            self.duration,
            self.longest,
            self.unknown,
            self.dropped,
            self.start,
        ]
        return [*families, self.ready] if ready else families
