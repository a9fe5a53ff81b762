"""Bounded waiting: poll a condition against a monotonic deadline instead of sleeping blindly."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

__all__ = ["Deadline", "WaitTimeout", "wait_for"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A :func:`wait_for` condition did not become true in time (a test failure, not an error)."""


class Deadline:
    """A point in :func:`time.monotonic` time; tells how much of a time budget is left."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.expires_at = time.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self.expires_at

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, but never past the deadline."""
        time.sleep(min(seconds, self.remaining()))


def wait_for(
    condition: Callable[[], T | None],
    timeout: float = 10.0,
    message: str = "condition",
    *,
    interval: float = 0.02,
    max_interval: float = 0.25,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` until it returns a truthy value, and return that value.

    Polls with a growing interval (``interval`` doubling up to ``max_interval``). Exceptions of
    the ``ignore`` types count as "not yet" (the last one is chained to the timeout). Raises
    :class:`WaitTimeout` naming ``message`` once ``timeout`` seconds have passed; the condition
    is always called at least once, and once more at the deadline.
    """
    deadline = Deadline(timeout)
    delay = interval
    last_error: BaseException | None = None
    while True:
        final = deadline.expired
        try:
            value = condition()
        except ignore as exc:
            last_error = exc
        else:
            if value:
                return value
        if final:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise WaitTimeout(
                f"timed out after {timeout:g}s waiting for {message}{detail}"
            ) from last_error
        deadline.sleep(delay)
        delay = min(delay * 2, max_interval)
