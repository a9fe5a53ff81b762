"""A pika ``IOLoop`` whose poller waits on gevent's own loop, for the node's connection.

Under gevent's monkey patching pika's ``IOLoop`` falls back to its ``poll`` poller over
gevent's ``select.poll`` emulation, which creates and starts fresh io watchers on every
``poll()`` and stops them again afterwards: several system calls per pass of the loop, and a
sequential call makes about three passes on the node. :class:`GeventPoller` keeps one
gevent io watcher per file descriptor instead (started when pika registers the descriptor,
changed when pika changes the events it wants, stopped when it unregisters it) and waits
for them, or for the next timer, on the hub. ``add_callback_threadsafe`` (request greenlets
hand their replies to the loop through it) wakes the loop with a gevent ``async`` watcher,
which is thread-safe and costs no system call when sent from the loop's own thread.

The architecture does not change: one greenlet runs the loop and owns the connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
import gevent.hub
import gevent.lock
from pika.adapters.select_connection import PollEvents, _PollerBase

from isc.client._threadloop import SharedIOLoop, SharedPollerMixin

__all__ = ["GeventIOLoop", "GeventPoller"]

# gevent's (libev's and libuv's) io event bits.
_GEVENT_READ = 1
_GEVENT_WRITE = 2


def _to_gevent(events: int) -> int:
    mask = 0
    if events & (PollEvents.READ | PollEvents.ERROR):
        mask |= _GEVENT_READ
    if events & PollEvents.WRITE:
        mask |= _GEVENT_WRITE
    return mask


class GeventPoller(SharedPollerMixin, _PollerBase):  # type: ignore[misc]
    """A pika poller with one persistent gevent io watcher per file descriptor.

    Ready events are collected by the watchers' callbacks (on the hub) into a map that the
    next :meth:`poll` dispatches; :meth:`poll` only blocks, on a gevent ``Waiter``, when
    nothing is ready and no callback is pending. While it blocks, its :attr:`lock` (a gevent
    semaphore) is free: a request greenlet that takes it may publish its reply itself.
    """

    def __init__(
        self,
        get_wait_seconds: Callable[[], float | None],
        process_timeouts: Callable[[], None],
    ) -> None:
        self._loop: Any = None  # the gevent loop, while the poller is active
        self._watchers: dict[int, Any] = {}  # fd -> gevent io watcher
        self._ready: dict[int, int] = {}  # fd -> pika events seen since the last dispatch
        self._waiter: gevent.hub.Waiter[Any] | None = None  # set while poll() blocks
        self._async: Any = None  # the thread-safe wake-up watcher
        self._woken = False
        self._init_shared(gevent.lock.Semaphore())
        super().__init__(get_wait_seconds, process_timeouts)

    @staticmethod
    def _current() -> object:
        return gevent.getcurrent()

    # -- waking up --------------------------------------------------------------------------

    def wake_threadsafe(self) -> None:
        """Wake the loop as soon as possible (thread-safe)."""
        wake = self._async
        if wake is not None:
            wake.send()
        else:  # not running yet or any more: pika's interrupt socket will do
            super().wake_threadsafe()

    def _on_wake(self) -> None:
        self._woken = True
        self._switch()

    def _switch(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None  # later events are only recorded, for the next poll()
            waiter.switch(None)

    # -- polling ----------------------------------------------------------------------------

    def poll(self) -> None:
        """Dispatch the ready events, first waiting for some (or a timer) if there are none."""
        if not self._ready and not self._woken:
            self._released_wait(self._wait)
        self._woken = False
        ready, self._ready = self._ready, {}
        if ready:
            self._dispatch_fd_events(ready)

    def _wait(self, delay: float) -> None:
        if delay <= 0:
            return
        waiter: gevent.hub.Waiter[Any] = gevent.hub.Waiter()
        timer = self._loop.timer(delay)
        timer.start(waiter.switch, None)
        self._waiter = waiter
        try:
            waiter.get()
        finally:
            self._waiter = None
            timer.stop()
            timer.close()

    def _on_io(self, events: int, fd: int) -> None:
        pika_events = 0
        if events & _GEVENT_READ:
            pika_events |= PollEvents.READ
        if events & _GEVENT_WRITE:
            pika_events |= PollEvents.WRITE
        self._ready[fd] = self._ready.get(fd, 0) | pika_events
        self._switch()

    # -- pika's poller interface ------------------------------------------------------------

    def _init_poller(self) -> None:
        self._loop = gevent.get_hub().loop
        self._async = self._loop.async_()
        self._async.start(self._on_wake)

    def _uninit_poller(self) -> None:
        for fd in list(self._watchers):
            self._stop_watcher(fd)
        if self._async is not None:
            wake, self._async = self._async, None
            wake.stop()
            wake.close()
        self._loop = None
        self._ready = {}

    def _register_fd(self, fileno: int, events: int) -> None:
        if self._loop is None:
            return  # activate_poller() registers every known descriptor
        self._stop_watcher(fileno)
        watcher = self._loop.io(fileno, _to_gevent(events))
        watcher.start(self._on_io, fileno, pass_events=True)
        self._watchers[fileno] = watcher

    def _modify_fd_events(
        self, fileno: int, events: int, events_to_clear: int, events_to_set: int
    ) -> None:
        if self._loop is None:
            return
        watcher = self._watchers.get(fileno)
        if watcher is None:
            self._register_fd(fileno, events)
            return
        mask = _to_gevent(events)
        if watcher.events == mask:
            return
        watcher.stop()
        watcher.events = mask
        watcher.start(self._on_io, fileno, pass_events=True)
        if events_to_clear and fileno in self._ready:
            # Events recorded before the change may no longer be wanted.
            self._ready[fileno] &= events

    def _unregister_fd(self, fileno: int, events_to_clear: int) -> None:
        self._ready.pop(fileno, None)
        if self._loop is not None:
            self._stop_watcher(fileno)

    def _stop_watcher(self, fileno: int) -> None:
        watcher = self._watchers.pop(fileno, None)
        if watcher is not None:
            watcher.stop()
            watcher.close()


class GeventIOLoop(SharedIOLoop):
    """pika's ``IOLoop`` running on gevent's hub through a :class:`GeventPoller`."""

    @staticmethod
    def _get_poller(
        get_wait_seconds: Callable[[], float | None], process_timeouts: Callable[[], None]
    ) -> GeventPoller:
        return GeventPoller(get_wait_seconds, process_timeouts)
