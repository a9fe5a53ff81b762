"""Running blocking or CPU-bound code from a handler without stalling the node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import gevent

__all__ = ["run_blocking"]

T = TypeVar("T")


def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a real OS thread; the calling greenlet waits for it.

    A node runs every handler, its timers and its AMQP connection on one gevent loop. Code
    that blocks that loop — a CPU-bound computation, or a C library gevent cannot patch —
    stops everything else: other calls wait, and heartbeats stop, so after twice the
    heartbeat interval the broker drops the node's connection (its in-flight requests are
    redelivered, and run again). Wrap such code in ``run_blocking``: it runs in gevent's
    thread pool while the loop keeps serving. Exceptions propagate to the caller.
    """
    pool = gevent.get_hub().threadpool
    return pool.apply(fn, args, kwargs)  # type: ignore[no-any-return]
