"""TaskPool: the node's requests and listeners, each in a greenlet, at most ``size`` at once.

``gevent.pool.Pool`` wraps every task in a ``gevent.Greenlet`` (links, spawn tree, a result)
and tracks it with link callbacks: on a node serving one call at a time that was about a
tenth of its CPU per call. A task here is a plain greenlet from ``gevent.spawn_raw``; the pool
keeps the set of running ones and a semaphore of free slots itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import gevent.lock

__all__ = ["TaskPool"]

log = logging.getLogger("isc.server")


class TaskPool:
    """Runs functions in greenlets of their own, at most ``size`` at once.

    :meth:`spawn` waits for a free slot when ``size`` tasks run. A task's exception is logged
    (the node's tasks catch their own; this is the last resort), never raised in the hub.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._slots = gevent.lock.Semaphore(size)
        self._running: set[Any] = set()  # raw greenlets
        self._idle = gevent.event.Event()
        self._idle.set()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in a new greenlet (waiting for a free slot first)."""
        self._slots.acquire()
        self._idle.clear()
        task = gevent.spawn_raw(self._run, fn, args)
        self._running.add(task)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except gevent.GreenletExit:
            pass  # kill()
        except BaseException:
            log.exception("task %s failed", getattr(fn, "__qualname__", fn))
        finally:
            self._done(gevent.getcurrent())

    def _done(self, task: Any) -> None:
        if task in self._running:
            self._running.discard(task)
            self._slots.release()
        if not self._running:
            self._idle.set()

    def __len__(self) -> int:
        """How many tasks run (or are about to start)."""
        return len(self._running)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no task runs; return whether that happened within ``timeout``."""
        return bool(self._idle.wait(timeout))

    def kill(self, timeout: float = 1.0) -> None:
        """Raise ``GreenletExit`` in every running task and wait up to ``timeout`` for them.

        A task that had not started yet never runs; every slot is free afterwards.
        """
        for task in list(self._running):
            gevent.kill(task)
        if not self.join(timeout):
            log.warning("%d task(s) did not stop when killed", len(self._running))
        for task in list(self._running):
            if task.dead:  # killed before it started: its finally clause never ran
                self._done(task)
