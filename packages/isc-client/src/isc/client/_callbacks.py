"""Where done-callbacks run: a thread of the client's own, never a caller's or the I/O loop's.

A future's done-callbacks are user code: they may block, or make a blocking isc call. Run on
the thread that read the reply (the I/O thread, or a caller driving the loop for its own
call), they would hold up every other call, or deadlock waiting for a reply only that
thread could read. So the client hands them to a :class:`CallbackRunner`: one thread,
started when the first callback is due, that runs them one at a time in the order the
calls finished. A callback that blocks delays later callbacks, nothing else.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["CallbackRunner"]

log = logging.getLogger("isc.client")


class CallbackRunner:
    """Runs callbacks on one thread of its own, in the order they were submitted."""

    def __init__(self, name: str = "isc-callbacks") -> None:
        self._name = name
        self._queue: collections.deque[tuple[Callable[[Any], object], Any]] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, fn: Callable[[Any], object], argument: Any) -> None:
        """Run ``fn(argument)`` on the runner's thread (thread-safe; never blocks)."""
        with self._ready:
            self._queue.append((fn, argument))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            else:
                self._ready.notify()

    def in_runner(self) -> bool:
        """Whether the caller is the runner's thread (it runs a callback now)."""
        thread = self._thread
        return thread is not None and thread is threading.current_thread()

    def close(self) -> None:
        """Let the thread end once every submitted callback has run."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    def _run(self) -> None:
        queue = self._queue
        while True:
            with self._ready:
                while not queue and not self._closed:
                    self._ready.wait()
                if not queue:
                    self._thread = None
                    return
                fn, argument = queue.popleft()
            try:
                fn(argument)
            except Exception:
                log.exception("a done-callback (%s) raised", getattr(fn, "__qualname__", fn))
