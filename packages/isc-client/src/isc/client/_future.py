"""FutureResult: the pending result of an asynchronous call."""

from __future__ import annotations

import concurrent.futures
from typing import Any

__all__ = ["FutureResult"]


class FutureResult(concurrent.futures.Future):  # type: ignore[type-arg]
    """The pending result of a remote call, as returned by ``call_async`` / ``invoke_async``.

    It keeps isclib 1.x's methods (:meth:`wait`, :meth:`resolve`, :meth:`reject`,
    :meth:`is_ready`) and is a :class:`concurrent.futures.Future`, so ``result()``,
    ``exception()``, ``add_done_callback()`` and ``asyncio.wrap_future()`` work. Thread-safe.
    """

    def __init__(self, cannonical_name: str = "", **extra: Any) -> None:
        super().__init__()
        #: ``"service.method"`` of the call (the isclib 1.x attribute name, typo included).
        self.cannonical_name = cannonical_name
        self.extra = extra

    def wait(self, timeout: float | None = 5) -> bool:
        """Block until the result is ready or ``timeout`` seconds pass; True if it is ready."""
        done, _ = concurrent.futures.wait([self], timeout=timeout)
        return bool(done)

    def resolve(self, value: Any) -> None:
        """Set the result, unless the future is already resolved, rejected or cancelled."""
        try:  # noqa: SIM105 - on every message: no context manager object
            self.set_result(value)
        except concurrent.futures.InvalidStateError:
            pass

    def reject(self, exception: BaseException) -> None:
        """Set an exception, unless the future is already resolved, rejected or cancelled."""
        try:  # noqa: SIM105 - on every message: no context manager object
            self.set_exception(exception)
        except concurrent.futures.InvalidStateError:
            pass

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
