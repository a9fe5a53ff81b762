"""What the client must know about its process: forks, and gevent's monkey patching.

Both can change under a running client: a process forks after the client connected (a
pre-fork web server, ``multiprocessing``), or imports ``isc.server`` (which patches) after
the client was used. Each I/O worker records the state it was built for, and the client
compares it on every use (an integer and a cached flag: no system call), so it can build a
fresh worker where the old one cannot work (see ``Client._get_worker``).
"""

from __future__ import annotations

import _thread
import os
import sys
from typing import Any

__all__ = [
    "before_native_thread_exit",
    "fork_generation",
    "gevent_patched",
    "native_thread_ident",
]

_forks = 0
_patched = False
#: ``_thread.get_ident`` as it was when isc was imported (gevent may replace it later).
_NATIVE_GET_IDENT = _thread.get_ident


def _after_fork_in_child() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):  # every POSIX CPython
    os.register_at_fork(after_in_child=_after_fork_in_child)


def fork_generation() -> int:
    """How many ``fork()`` calls lie between this process and the one that imported isc:
    a worker built under another generation belongs to an ancestor process."""
    return _forks


def gevent_patched() -> bool:
    """Whether gevent's monkey patching replaced ``threading`` (or ``select``) by now.

    Once true it stays true, so the positive answer is cached; before that it costs a
    dictionary lookup, plus a call into gevent once ``gevent.monkey`` is imported.
    """
    global _patched
    if _patched:
        return True
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None:
        return False
    try:
        patched = bool(monkey.is_module_patched("threading") or monkey.is_module_patched("select"))
    except Exception:  # pragma: no cover - an unexpected gevent version: assume patched
        patched = True
    _patched = patched
    return patched


def native_thread_ident() -> int:
    """The OS thread id of the running thread, whatever gevent patched."""
    return int(_NATIVE_GET_IDENT())


def before_native_thread_exit(native_ident: int) -> None:
    """Let a thread started before gevent's monkey patching end cleanly after it.

    ``threading`` files each thread under its id, and removes it when the thread ends under
    the id ``threading.get_ident()`` gives then, which gevent's patching changed: the thread
    would end with a ``KeyError`` from ``threading``. Filing it under the new id first avoids
    that. A no-op when nothing was patched.
    """
    import threading

    current = threading.get_ident()
    if current == native_ident:
        return
    active: dict[int, Any] = getattr(threading, "_active", {})
    thread = active.pop(native_ident, None)
    if thread is not None:
        active[current] = thread
