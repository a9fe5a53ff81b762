"""A pika ``IOLoop`` that other threads may enter while it waits: no wake-up per publish.

With pika's own loop, every call a caller thread makes is handed to the I/O thread: the
caller writes a byte to the loop's interrupt socket, the I/O thread wakes from ``epoll``,
reads the byte, runs the hand-off and publishes. That is two system calls, a thread switch and
a whole pass of the loop per call, before the request is even on the wire.

:class:`SharedEPollPoller` is pika's epoll poller with a lock: the I/O thread holds it for
everything it does and lets go of it only while it blocks in ``epoll_wait``. A caller thread
that takes the lock therefore has the connection to itself, as if it ran on the loop, and
publishes its request directly; the I/O thread sleeps on. (``epoll``'s registrations may be
changed from another thread while one waits, which is what the kernel promises and pika's
other pollers do not.) Timers are the one thing the sleeping loop would not see: whoever adds
one while holding the lock asks :meth:`SharedEPollPoller.wake_if_later_than` whether the
loop must be woken to honour it.

Only for plain threads on Linux: under gevent's monkey patching ``select.epoll`` is gone and
a blocking ``epoll_wait`` would stall the hub, so :func:`shared_ioloop` returns None there
and the worker uses pika's own loop (and a node its gevent loop).
"""

from __future__ import annotations

import select
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from pika.adapters.select_connection import IOLoop, PollPoller

#: How late a timer may run rather than wake the waiting loop for it (the loop computes its
#: wait from the same timers, a few microseconds apart).
_TIMER_SLACK = 0.005

__all__ = ["SharedEPollPoller", "SharedIOLoop", "SharedPollerMixin", "shared_ioloop"]


class SharedPollerMixin:
    """What makes a pika poller shareable: a :attr:`lock` its loop holds except while it waits.

    A poller class lists this mixin first and calls :meth:`_released_wait` around the call
    that blocks; ``_current()`` names the running thread (or greenlet).
    """

    _get_max_wait: Callable[[], float]
    _get_wait_seconds: Callable[[], float | None]
    wake_threadsafe: Callable[[], None]

    def _init_shared(self, lock: Any) -> None:
        #: Held by the loop except while it waits for I/O; whoever holds it may use the
        #: connection as if it ran on the loop.
        self.lock = lock
        #: The monotonic time the current wait ends (0 while the loop is not waiting).
        self.waiting_until = 0.0
        self._owner: object = None  # the loop's thread (or greenlet) while it runs
        self._driver: object = None  # another thread running the loop for a while (drive())

    @staticmethod
    def _current() -> object:
        return threading.get_ident()

    def in_loop(self) -> bool:
        """Whether the caller runs the loop now: its own thread (or greenlet), or a driver."""
        current = self._current()
        return current == self._driver or (self._owner is not None and current == self._owner)

    def start(self) -> None:
        """Run the loop, holding :attr:`lock` except while waiting for events."""
        with self.lock:
            self._owner = self._current()
            try:
                super().start()  # type: ignore[misc]
            finally:
                self._owner = None

    def _released_wait(self, wait: Callable[[float], Any]) -> Any:
        """``wait(timeout)`` for the loop's next wait, with :attr:`lock` released."""
        timeout = self._get_max_wait()
        self.waiting_until = time.monotonic() + timeout
        self.lock.release()
        try:
            return wait(timeout)
        finally:
            self.lock.acquire()
            self.waiting_until = 0.0

    def wake_if_later_than(self, deadline: float) -> None:
        """Wake the waiting loop if its wait ends after ``deadline`` (monotonic); call this
        holding :attr:`lock` after adding a timer from outside the loop."""
        if self.waiting_until > deadline + _TIMER_SLACK:
            self.wake_threadsafe()

    def drive(self, until: Callable[[], bool], timeout: float) -> bool:
        """Run the loop on this thread until ``until()`` or ``timeout``; False if this poller
        cannot be driven (the caller then simply waits). Call it holding :attr:`lock`."""
        return False


class SharedEPollPoller(SharedPollerMixin, PollPoller):  # type: ignore[misc]
    """pika's epoll poller, whose :attr:`lock` the I/O thread holds except while it waits.

    Its descriptors are registered with one epoll instance, which the I/O thread does not
    wait on directly: it waits on a second epoll instance that holds only the first. That
    lets another thread *drive* the loop (:meth:`drive`): it takes the first instance out of
    the second, so the sleeping I/O thread is not woken by what arrives, and waits on it
    itself, dispatching the events and running the timers, as the I/O thread would have.
    A thread blocked in a call thus reads its own reply, with no hand-over between threads
    (each one costs several futex calls on the GIL and a context switch).
    """

    POLL_TIMEOUT_MULT = 1  # epoll takes seconds

    def __init__(
        self,
        get_wait_seconds: Callable[[], float | None],
        process_timeouts: Callable[[], None],
    ) -> None:
        self._init_shared(threading.Lock())
        self._outer: select.epoll | None = None  # what the I/O thread waits on
        super().__init__(get_wait_seconds, process_timeouts)

    @staticmethod
    def _create_poller() -> select.epoll:
        return select.epoll()

    def _init_poller(self) -> None:
        super()._init_poller()
        self._outer = select.epoll()
        self._outer.register(self._poll.fileno(), select.EPOLLIN)

    def _uninit_poller(self) -> None:
        if self._outer is not None:
            self._outer.close()
            self._outer = None
        super()._uninit_poller()

    def poll(self) -> None:
        """Wait (lock released) until a descriptor is ready, then dispatch (holding it)."""
        outer = self._outer
        if outer is None:  # pragma: no cover - not activated
            return
        self._released_wait(outer.poll)
        self._dispatch(self._poll.poll(0))

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        if events:
            ready: dict[int, int] = {}
            for fileno, event in events:
                ready[fileno] = ready.get(fileno, 0) | event
            self._dispatch_fd_events(ready)

    def drive(self, until: Callable[[], bool], timeout: float) -> bool:
        """Run the loop on this thread until ``until()`` or ``timeout`` (holding the lock)."""
        outer, inner = self._outer, self._poll
        if outer is None or inner is None or not self._running or self._stopping:
            return False
        deadline = time.monotonic() + timeout
        outer.unregister(inner.fileno())
        self._driver = self._current()
        try:
            while not until() and not self._stopping:
                wait = min(self._get_max_wait(), deadline - time.monotonic())
                if wait < 0:
                    break
                self._dispatch(inner.poll(wait))
                self._process_timeouts()
        finally:
            self._driver = None
            outer.register(inner.fileno(), select.EPOLLIN)  # ready events wake the I/O thread
            # The I/O thread's wait was computed before this thread added or ran timers. (A
            # stop() here left its wake-up byte unread: the I/O thread wakes for it.)
            remaining = self._get_wait_seconds()
            if remaining is not None:
                self.wake_if_later_than(time.monotonic() + remaining)
        return True


class SharedIOLoop(IOLoop):  # type: ignore[misc]
    """pika's ``IOLoop`` over a shared poller (:class:`SharedEPollPoller` by default)."""

    _poller: SharedPollerMixin

    @staticmethod
    def _get_poller(
        get_wait_seconds: Callable[[], float | None], process_timeouts: Callable[[], None]
    ) -> SharedPollerMixin:
        return SharedEPollPoller(get_wait_seconds, process_timeouts)

    @property
    def lock(self) -> Any:
        """The poller's lock: hold it to use the connection from outside the loop."""
        return self._poller.lock

    def in_loop(self) -> bool:
        """Whether the caller is the loop's own thread (or greenlet)."""
        return self._poller.in_loop()

    def wake_if_later_than(self, deadline: float) -> None:
        """See :meth:`SharedPollerMixin.wake_if_later_than`."""
        self._poller.wake_if_later_than(deadline)

    def drive(self, until: Callable[[], bool], timeout: float) -> bool:
        """See :meth:`SharedPollerMixin.drive`."""
        return self._poller.drive(until, timeout)


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None:
        return False
    try:
        return bool(monkey.is_module_patched("select") or monkey.is_module_patched("threading"))
    except Exception:  # pragma: no cover - an unexpected gevent version
        return True


def shared_ioloop() -> SharedIOLoop | None:
    """A :class:`SharedIOLoop` where it works (plain threads, ``select.epoll``), else None."""
    if not hasattr(select, "epoll") or _gevent_patched():
        return None
    return SharedIOLoop()
