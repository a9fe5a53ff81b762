"""TaskPool: the node's requests or listeners, each in a greenlet, at most ``size`` at once.

``gevent.pool.Pool`` wraps every task in a ``gevent.Greenlet`` (links, spawn tree, a result)
and tracks it with link callbacks: on a node serving one call at a time that was about a
tenth of its CPU per call. A task here is a plain greenlet from ``gevent.spawn_raw``; the pool
keeps the set of running ones and a count of free slots itself.

:meth:`TaskPool.spawn` is called from the node's I/O loop, so it never waits: a task that
finds every slot taken joins a backlog (bounded or not), and each finishing task starts the
oldest waiting one in its slot.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

__all__ = ["TaskPool"]

log = logging.getLogger("isc.server")

_Task = tuple[Callable[..., Any], tuple[Any, ...]]


class TaskPool:
    """Runs functions in greenlets of their own, at most ``size`` at once, never waiting.

    :meth:`spawn` starts a task at once when a slot is free, else queues it in a backlog
    that finishing tasks drain oldest first. ``max_queued`` bounds the backlog (``None``: no
    bound, for work bounded elsewhere, such as requests by the prefetch); when it is full,
    :meth:`spawn` refuses the new task. A task's exception is logged (the node's tasks catch
    their own; this is the last resort), never raised in the hub.
    """

    def __init__(self, size: int, max_queued: int | None = None) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one slot, got size={size!r}")
        if max_queued is not None and max_queued < 0:
            raise ValueError(f"max_queued must be >= 0 or None, got {max_queued!r}")
        self.size = size
        #: the most tasks that may wait for a slot (``None``: no bound)
        self.max_queued = max_queued
        self._free = size
        self._running: set[Any] = set()  # raw greenlets, one per taken slot
        self._backlog: collections.deque[_Task] = collections.deque()
        self._idle = gevent.event.Event()
        self._idle.set()

    def spawn(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` in a new greenlet, or queue it if every slot is taken; never waits.

        Returns ``False``, without queueing the task, when the backlog already holds
        ``max_queued`` tasks.
        """
        if self._free:
            self._free -= 1
            self._idle.clear()
            self._running.add(gevent.spawn_raw(self._run, fn, args))
            return True
        if self.max_queued is not None and len(self._backlog) >= self.max_queued:
            return False
        self._backlog.append((fn, args))
        return True

    def spawn_unbounded(self, fn: Callable[..., Any], *args: Any) -> None:
        """As :meth:`spawn`, but past ``max_queued`` too: for work bounded elsewhere (a
        consumer's prefetch), which must never be refused."""
        if self._free:
            self._free -= 1
            self._idle.clear()
            self._running.add(gevent.spawn_raw(self._run, fn, args))
        else:
            self._backlog.append((fn, args))

    def room(self) -> int | None:
        """How many tasks :meth:`spawn` would take now (``None``: any number)."""
        if self.max_queued is None:
            return None
        return max(0, self._free + self.max_queued - len(self._backlog))

    @property
    def running(self) -> int:
        """How many tasks run (or are about to start)."""
        return len(self._running)

    @property
    def queued(self) -> int:
        """How many tasks wait in the backlog for a slot."""
        return len(self._backlog)

    def clear_queued(self) -> int:
        """Forget every task still waiting for a slot (they never run); return how many."""
        count = len(self._backlog)
        self._backlog.clear()
        return count

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
            if self._backlog:  # the oldest waiting task takes over the slot
                fn, args = self._backlog.popleft()
                self._running.add(gevent.spawn_raw(self._run, fn, args))
            else:
                self._free += 1
        if not self._running:
            self._idle.set()

    def __len__(self) -> int:
        """How many tasks run, are about to start or wait for a slot."""
        return len(self._running) + len(self._backlog)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no task runs or waits; return whether that happened within ``timeout``."""
        return bool(self._idle.wait(timeout))

    def kill(self, timeout: float = 1.0) -> int:
        """Forget the backlog, raise ``GreenletExit`` in every running task and wait up to
        ``timeout`` for them; return how many queued tasks were forgotten.

        A task that had not started yet never runs; every slot is free afterwards.
        """
        forgotten = self.clear_queued()
        for task in list(self._running):
            gevent.kill(task)
        if not self.join(timeout):
            log.warning("%d task(s) did not stop when killed", len(self._running))
        for task in list(self._running):
            if task.dead:  # killed before it started: its finally clause never ran
                self._done(task)
        return forgotten
