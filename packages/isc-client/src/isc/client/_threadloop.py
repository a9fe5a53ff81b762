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
import threading
import time
from collections.abc import Callable
from typing import Any

from pika.adapters.select_connection import IOLoop, PollPoller

from . import _process

#: How late a timer may run rather than wake the waiting loop for it (the loop computes its
#: wait from the same timers, a few microseconds apart).
_TIMER_SLACK = 0.005

__all__ = ["SharedEPollPoller", "SharedIOLoop", "SharedPollerMixin", "shared_ioloop"]


class SharedPollerMixin:
    """What makes a pika poller shareable: a :attr:`lock` its loop holds except while it waits.

    A poller class lists this mixin first and calls :meth:`_released_wait` around the call
    that blocks; ``_current()`` names the running thread (or greenlet).

    The lock is only ever held for short, bounded work (dispatching events, publishing):
    whoever waits for I/O, the loop's own thread or a driver, lets go of it first, and no
    user code runs under it. A thread that takes it therefore never waits for another
    caller's call.
    """

    _get_max_wait: Callable[[], float]
    _get_wait_seconds: Callable[[], float | None]
    wake_threadsafe: Callable[[], None]

    def _init_shared(self, lock: Any) -> None:
        #: Held by the loop except while it waits for I/O; whoever holds it may use the
        #: connection as if it ran on the loop.
        self.lock = lock
        #: The monotonic time the loop thread's current wait ends (0 while not waiting).
        self.waiting_until = 0.0
        #: The same for the driver's current wait (0 while nobody drives or it does not wait).
        self.driver_waiting_until = 0.0
        self._owner: object = None  # the loop's thread (or greenlet) while it runs
        self._driver: object = None  # another thread running the loop for a while (drive())

    @staticmethod
    def _current() -> object:
        return threading.get_ident()

    def in_loop(self) -> bool:
        """Whether the caller runs the loop now: its own thread (or greenlet), or a driver."""
        current = self._current()
        return current == self._driver or (self._owner is not None and current == self._owner)

    def is_loop_thread(self) -> bool:
        """Whether the caller is the loop's own thread (or greenlet)."""
        return self._owner is not None and self._current() == self._owner

    @property
    def driven(self) -> bool:
        """Whether another thread drives the loop now (see :meth:`drive`)."""
        return self._driver is not None

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
        """Wake whoever waits for the loop's events (its thread, or the driver) if that wait
        ends after ``deadline`` (monotonic); call this holding :attr:`lock` after adding a
        timer from outside the loop."""
        until = self.driver_waiting_until if self._driver is not None else self.waiting_until
        if until > deadline + _TIMER_SLACK:
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

    One thread drives at a time, and only until its own call ends; it lets go of the lock
    while it waits, like the I/O thread, so other threads publish meanwhile, and the replies
    it reads for them finish their futures at once. While a driver drives, the I/O thread
    wakes only for timers and leaves the descriptors to the driver.
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
        if self._driver is None:  # else the driver reads the descriptors; timers are ours
            self._dispatch(self._poll.poll(0))

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        if events:
            ready: dict[int, int] = {}
            for fileno, event in events:
                ready[fileno] = ready.get(fileno, 0) | event
            self._dispatch_fd_events(ready)

    def drive(self, until: Callable[[], bool], timeout: float) -> bool:
        """Run the loop on this thread until ``until()`` or ``timeout`` (holding the lock,
        which it releases while it waits). False, at once, if the loop is not running or
        another thread drives it."""
        outer, inner = self._outer, self._poll
        if (
            outer is None
            or inner is None
            or not self._running
            or self._stopping
            or self._driver is not None
        ):
            return False
        deadline = time.monotonic() + timeout
        outer.unregister(inner.fileno())
        self._driver = self._current()
        lock = self.lock
        try:
            while not until() and not self._stopping:
                wait = min(self._get_max_wait(), deadline - time.monotonic())
                if wait < 0:
                    break
                self.driver_waiting_until = time.monotonic() + wait
                lock.release()
                try:
                    events = inner.poll(wait)
                finally:
                    lock.acquire()
                    self.driver_waiting_until = 0.0
                self._dispatch(events)
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

    def close_after_fork(self) -> None:
        """In a forked child: close this poller's descriptors without touching the epoll
        instances they share with the parent (unregistering would change the parent's)."""
        for name in ("_outer", "_poll"):
            epoll = getattr(self, name, None)
            if epoll is not None:
                epoll.close()
                setattr(self, name, None)
        for name in ("_r_interrupt", "_w_interrupt"):
            sock = getattr(self, name, None)
            if sock is not None:
                sock.close()
                setattr(self, name, None)


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

    @property
    def driven(self) -> bool:
        """Whether a thread other than the loop's drives it now."""
        return self._poller.driven

    def is_loop_thread(self) -> bool:
        """Whether the caller is the loop's own thread."""
        return self._poller.is_loop_thread()

    def wake_threadsafe(self) -> None:
        """Wake whoever waits for the loop's events (thread-safe)."""
        self._poller.wake_threadsafe()


def shared_ioloop() -> SharedIOLoop | None:
    """A :class:`SharedIOLoop` where it works (plain threads, ``select.epoll``), else None."""
    if not hasattr(select, "epoll") or _process.gevent_patched():
        return None
    return SharedIOLoop()
