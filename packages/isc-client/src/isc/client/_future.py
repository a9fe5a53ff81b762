"""FutureResult: the pending result of an asynchronous call."""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._callbacks import CallbackRunner

__all__ = ["FutureResult"]

_FINISHED = "FINISHED"
_CANCELLED = "CANCELLED_AND_NOTIFIED"


class FutureResult(concurrent.futures.Future):  # type: ignore[type-arg]
    """The pending result of a remote call, as returned by ``call_async`` / ``invoke_async``.

    It keeps isclib 1.x's methods (:meth:`wait`, :meth:`resolve`, :meth:`reject`,
    :meth:`is_ready`) and is a :class:`concurrent.futures.Future`, so ``result()``,
    ``exception()``, ``add_done_callback()`` and ``asyncio.wrap_future()`` work. Thread-safe.

    The done-callbacks of a client's futures run on that client's callback thread, one at a
    time, in the order the calls finished (never on the thread that read the reply, nor on a
    caller's thread); a callback may make blocking isc calls. A future made by hand runs its
    callbacks as :class:`concurrent.futures.Future` does.
    """

    #: Where this future's done-callbacks run (set by the client that made it).
    _runner: CallbackRunner | None = None

    def __init__(self, cannonical_name: str = "", **extra: Any) -> None:
        super().__init__()
        #: ``"service.method"`` of the call (the isclib 1.x attribute name, typo included).
        self.cannonical_name = cannonical_name
        self.extra = extra

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[Any]], object]) -> None:
        """Call ``fn(future)`` once the future is done (on the client's callback thread)."""
        runner = self._runner
        if runner is None:
            super().add_done_callback(fn)
        else:
            super().add_done_callback(functools.partial(runner.submit, fn))

    def _add_internal_callback(
        self, fn: Callable[[concurrent.futures.Future[Any]], object]
    ) -> None:
        """Call ``fn(future)`` right where the future finishes: isc's own bookkeeping only."""
        super().add_done_callback(fn)

    def wait(self, timeout: float | None = 5) -> bool:
        """Block until the result is ready or ``timeout`` seconds pass; True if it is ready."""
        return self._wait_done(timeout)

    def _wait_done(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for the future to finish; return whether it did."""
        with self._condition:
            if self._state not in (_FINISHED, _CANCELLED):
                self._condition.wait(timeout)
            return bool(self._state in (_FINISHED, _CANCELLED))

    def resolve(self, value: Any) -> bool:
        """Set the result, unless the future is already resolved, rejected or cancelled;
        return whether this call set it."""
        try:
            self.set_result(value)
        except concurrent.futures.InvalidStateError:
            return False
        return True

    def reject(self, exception: BaseException) -> bool:
        """Set an exception, unless the future is already resolved, rejected or cancelled;
        return whether this call set it."""
        try:
            self.set_exception(exception)
        except concurrent.futures.InvalidStateError:
            return False
        return True

    def is_ready(self) -> bool:
        """True once the future is resolved, rejected or cancelled."""
        return self.done()

    @property
    def value(self) -> Any:
        """The result if the call succeeded, else None (isclib 1.x's attribute)."""
        if self.done() and not self.cancelled() and self.exception(0) is None:
            return self.result(0)
        return None

    def __repr__(self) -> str:
        return f"<FutureResult {self.cannonical_name} {self._state.lower()}>"
