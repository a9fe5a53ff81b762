"""Services of the delivery-mode tests: service-mode listeners and a cluster timer."""

from __future__ import annotations

import os
import time
from typing import Any

from isc.server import cluster_timer, expose, on


class Orders:
    """One service-mode listener and one broadcast listener of the same event, and a
    service-mode listener that always fails."""

    name = "orders"

    def __init__(self) -> None:
        self.handled: list[Any] = []  # service mode: once per service
        self.seen: list[Any] = []  # broadcast: once per node
        self.failures = 0

    @on("order.placed", mode="service")
    def handle(self, order: Any) -> None:
        self.handled.append(order)

    @on("order.placed")
    def see(self, order: Any) -> None:
        self.seen.append(order)

    @on("order.bad", mode="service", retries=2)
    def fail(self, order: Any) -> None:
        self.failures += 1
        raise RuntimeError(f"cannot handle order {order!r}")

    @expose
    def report(self) -> list[Any]:
        """[this node's pid, handled, seen, failures]: one call, so all come from one node."""
        return [os.getpid(), self.handled, self.seen, self.failures]


class Ticker:
    """A cluster timer that records when it ticked on this node."""

    name = "ticker"

    def __init__(self) -> None:
        self.ticks: list[float] = []

    @cluster_timer(timeout=0.2)
    def tick(self) -> None:
        self.ticks.append(time.time())

    @expose
    def report(self) -> list[Any]:
        """[this node's pid, the wall-clock times of its ticks]."""
        return [os.getpid(), self.ticks]


class Counter:
    """Counts notifications per delivery mode (``benchmarks/modes.py``)."""

    name = "counter"

    def __init__(self) -> None:
        self.broadcast = 0
        self.service = 0

    @on("bench.broadcast")
    def on_broadcast(self, n: Any) -> None:
        self.broadcast += 1

    @on("bench.service", mode="service")
    def on_service(self, n: Any) -> None:
        self.service += 1

    @expose
    def counts(self) -> dict[str, int]:
        """How many notifications each mode's listener handled on this node."""
        return {"broadcast": self.broadcast, "service": self.service}
