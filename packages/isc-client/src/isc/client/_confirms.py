"""ConfirmBuffer: notifications between ``notify()`` and the broker's publisher confirm.

Notifications (``confirm=True`` items) count against a bounded buffer from the moment
``notify()`` accepts them until the broker confirms them, so an outage cannot grow memory
without limit. Published ones wait here by their channel's publish sequence number; if the
channel is lost before the broker confirms them, they are published again after the
reconnect (at least once), and a nack publishes them again at once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from isc.core import BufferFullError, redact_url

if TYPE_CHECKING:
    from ._connection import Outgoing

__all__ = ["ConfirmBuffer"]


class ConfirmBuffer:
    """The notifications not yet confirmed by the broker, and their bound."""

    def __init__(self, url: str, limit: int) -> None:
        self._url = url
        self._limit = limit
        self._count = 0  # accepted and not yet confirmed (or dropped)
        self._changed = threading.Condition(threading.Lock())
        self._sequence = 0  # the confirm channel's publish sequence number
        self._unconfirmed: dict[int, Outgoing] = {}
        #: Items published again after a reconnect, nacked by the broker, or abandoned by stop.
        self.stats = {"republished": 0, "nacked": 0, "abandoned": 0}

    @property
    def count(self) -> int:
        """How many notifications were accepted and not confirmed yet."""
        return self._count

    def reserve(self) -> None:
        """Count one more notification; :class:`BufferFullError` when the buffer is full."""
        with self._changed:
            if self._count >= self._limit:
                raise BufferFullError(
                    f"{self._count} notifications are waiting for the broker at "
                    f"{redact_url(self._url)} (the limit is {self._limit}); "
                    "retry once the connection is back, or raise max_buffered_notifications"
                )
            self._count += 1

    def release(self, count: int) -> None:
        """``count`` notifications are confirmed (or given up): free their places."""
        with self._changed:
            self._count -= count
            if self._count <= 0:
                self._count = 0
                self._changed.notify_all()

    def wait_empty(self, timeout: float | None = None) -> bool:
        """Wait until every accepted notification is confirmed; return whether it is."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout)

    # -- the I/O loop ------------------------------------------------------------------------

    def restart_sequence(self) -> None:
        """A new confirm channel: its delivery tags count from 1 again."""
        self._sequence = 0

    def published(self, item: Outgoing) -> None:
        """``item`` went out on the confirm channel: keep it until the broker confirms it."""
        self._sequence += 1
        self._unconfirmed[self._sequence] = item

    def take_unconfirmed(self) -> list[Outgoing]:
        """The channel is gone: the items it never confirmed, to publish again, in order."""
        items = list(self._unconfirmed.values())
        self._unconfirmed.clear()
        self.stats["republished"] += len(items)
        return items

    def confirmed(self, tag: int, multiple: bool, *, nack: bool) -> list[Outgoing]:
        """The broker acked (or nacked) ``tag`` (and every earlier one, with ``multiple``).

        Returns the nacked items, to publish again; acked ones free their places."""
        if multiple:
            tags = []
            for t in self._unconfirmed:  # insertion order is publish order
                if t > tag:
                    break
                tags.append(t)
        else:
            tags = [tag] if tag in self._unconfirmed else []
        items = [self._unconfirmed.pop(t) for t in tags]
        if not items:
            return []
        if nack:
            self.stats["nacked"] += len(items)
            return items
        self.release(len(items))
        return []

    def abandon(self, waiting: list[Any]) -> int:
        """Stopping: give up ``waiting`` and every unconfirmed item; how many notifications
        that was."""
        abandoned = sum(1 for item in [*waiting, *self._unconfirmed.values()] if item.confirm)
        self.stats["abandoned"] += abandoned
        self._unconfirmed.clear()
        self.release(self._count)
        return abandoned

    def forget(self) -> None:
        """In a forked child: the parent's notifications are the parent's business."""
        self._unconfirmed.clear()
        self._count = 0
