"""What a node counts: calls, errors and latencies per handler, and the messages it drops.

Plain counters and fixed-bucket histograms, updated in place: recording a call is a dict
lookup, a ``bisect`` and a few additions, with no allocation once a handler has been seen.
A node runs every handler on one thread (gevent greenlets switch only at I/O), so there are
no locks; :meth:`NodeMetrics.snapshot` copies the numbers into plain dicts, lists, ints and
floats that every codec can encode (``_inspect`` sends them).
"""

from __future__ import annotations

import os
import socket
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["DEFAULT_BUCKETS", "COUNTERS", "HandlerStats", "NodeMetrics"]

#: Upper bounds (seconds, inclusive) of the latency buckets; one more bucket counts the rest.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

#: The node-wide counters of messages that were dropped or could not be served normally.
COUNTERS: tuple[str, ...] = (
    # a request that could not be decoded, or in a codec the node refuses: an error reply
    "bad_requests",
    # a request whose caller had already given up (its deadline passed): skipped, acked
    "expired_requests",
    # a request without reply_to: it ran, but its result (or error) went nowhere
    "requests_without_reply_to",
    # a reply that could not be sent (not encodable, or over max_message_size): an error
    # reply was sent instead
    "unsendable_replies",
    # a notification that could not be decoded: dropped
    "bad_notifications",
    # a notification that found every listener slot taken and the listeners' backlog full
    # (max_queued_notifications), or that still waited when the node stopped: dropped
    "dropped_notifications",
    # a mode="service" notification whose listener raised: published again to its queue
    # (counted each time), for another try
    "retried_notifications",
    # a mode="service" notification whose listener raised on its last try, or that could not
    # be decoded: rejected, so the broker dead-letters it to the listener's dead-letter queue
    "dead_lettered_notifications",
    # a reply the broker returned as unroutable: its caller's reply queue was gone
    "unroutable_replies",
    # a request skipped (acked, never run) because its reply queue was known to be gone
    "orphaned_requests",
)

#: The kinds of handlers a node runs.
KINDS = ("methods", "listeners", "timers")


class HandlerStats:
    """The counters and latency histogram of one handler (a method, listener or timer)."""

    __slots__ = ("bounds", "buckets", "calls", "errors", "longest", "refused", "seconds")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        #: how many runs took at most ``bounds[i]`` seconds (and more than ``bounds[i-1]``);
        #: the last bucket counts the runs longer than every bound
        self.buckets = [0] * (len(bounds) + 1)
        #: runs of the handler (successful or not)
        self.calls = 0
        #: runs that raised
        self.errors = 0
        #: requests refused before running: wrong arguments
        self.refused = 0
        #: total seconds of all runs
        self.seconds = 0.0
        #: the longest run, in seconds
        self.longest = 0.0

    def observe(self, seconds: float, failed: bool = False) -> None:
        """Count one run that took ``seconds``, and whether it raised."""
        self.buckets[bisect_left(self.bounds, seconds)] += 1
        self.calls += 1
        self.seconds += seconds
        if seconds > self.longest:
            self.longest = seconds
        if failed:
            self.errors += 1

    def snapshot(self) -> dict[str, Any]:
        """The numbers as a plain dict (the bucket bounds are sent once per snapshot)."""
        return {
            "calls": self.calls,
            "errors": self.errors,
            "refused": self.refused,
            "seconds": self.seconds,
            "max": self.longest,
            "buckets": list(self.buckets),
        }


class NodeMetrics:
    """Every handler's :class:`HandlerStats` by service, and the node-wide drop counters.

    Entries exist only for handlers that ran (or were refused for wrong arguments): a request
    for a method that does not exist counts in ``unknown_methods`` of its service, so callers
    inventing method names cannot grow the table.
    """

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or bounds[0] <= 0:
            raise ValueError(
                f"latency buckets must be increasing positive seconds, got {list(buckets)!r}"
            )
        self.bounds = bounds
        #: when counting started (seconds since the Unix epoch)
        self.since = time.time()
        #: node-wide counters, see :data:`COUNTERS`
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._handlers: dict[str, dict[str, dict[str, HandlerStats]]] = {k: {} for k in KINDS}
        self._unknown: dict[str, int] = {}

    def handler(self, kind: str, service: str, name: str) -> HandlerStats:
        """The stats of handler ``name`` of ``service``; ``kind`` is one of :data:`KINDS`."""
        by_service = self._handlers[kind].get(service)
        if by_service is None:
            by_service = self._handlers[kind][service] = {}
        stats = by_service.get(name)
        if stats is None:
            stats = by_service[name] = HandlerStats(self.bounds)
        return stats

    def method(self, service: str, name: str) -> HandlerStats:
        """The stats of the exposed method ``service.name``."""
        return self.handler("methods", service, name)

    def unknown_method(self, service: str) -> None:
        """Count a request for a method of ``service`` that is missing or not exposed."""
        self._unknown[service] = self._unknown.get(service, 0) + 1

    def count(self, counter: str) -> None:
        """Add one to the node-wide ``counter`` (one of :data:`COUNTERS`)."""
        self.counters[counter] += 1

    def handlers(self) -> Iterator[tuple[str, str, str, HandlerStats]]:
        """Every handler that has stats, as ``(kind, service, name, stats)``, sorted.

        For exporters reading the numbers in place (the stats are live objects, not copies):
        read them without switching greenlets in between for a consistent view.
        """
        for kind in KINDS:
            for service, by_name in sorted(self._handlers[kind].items()):
                for name, stats in sorted(by_name.items()):
                    yield kind, service, name, stats

    def unknown_methods(self) -> dict[str, int]:
        """How many requests for missing or unexposed methods each service got."""
        return dict(self._unknown)

    def snapshot(self, service: str) -> dict[str, Any]:
        """The numbers of ``service`` and the node-wide counters, as plain data.

        ``{"since", "uptime", "node": {"host", "pid"}, "buckets": [bounds...],
        "methods"|"listeners"|"timers": {name: HandlerStats.snapshot()},
        "unknown_methods": n, "dropped": {counter: n}}``.
        """
        now = time.time()
        result: dict[str, Any] = {
            "since": self.since,
            "uptime": now - self.since,
            "node": {"host": socket.gethostname(), "pid": os.getpid()},
            "buckets": list(self.bounds),
        }
        for kind in KINDS:
            handlers = self._handlers[kind].get(service, {})
            result[kind] = {name: stats.snapshot() for name, stats in sorted(handlers.items())}
        result["unknown_methods"] = self._unknown.get(service, 0)
        result["dropped"] = dict(self.counters)
        return result
