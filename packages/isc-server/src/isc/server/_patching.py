"""gevent's monkey patching, applied safely from inside ``import isc.server``.

The patching swaps ``_thread.get_ident`` for gevent's, while the import system holds a lock
for every module being imported, owned by the importing thread's native id. gevent re-owns
those locks itself, but only when no other thread runs; otherwise (a ``Client`` already
used, or any library's thread) the import of ``isc.server`` dies at its end with
``RuntimeError: cannot release un-acquired lock``. :func:`patch_all` re-owns them in that
case too, so ``import isc.server`` works whatever ran before it.
"""

from __future__ import annotations

import threading

from gevent import monkey

__all__ = ["patch_all"]


def patch_all() -> None:
    """``gevent.monkey.patch_all()``, unless already applied, then re-own the import locks."""
    if monkey.is_module_patched("socket"):
        return
    native = threading.get_ident()
    monkey.patch_all()
    _reown_import_locks(native, threading.get_ident())


def _reown_import_locks(old: int, new: int) -> None:
    """Give the import locks that thread ``old`` holds to ``new`` (its id after patching)."""
    import importlib._bootstrap as bootstrap

    locks = getattr(bootstrap, "_module_locks", {})
    for ref in list(locks.values()):
        try:
            lock = ref()
        except TypeError:  # pragma: no cover - a lock stored directly, not as a weakref
            lock = ref
        if lock is not None and getattr(lock, "owner", None) == old:
            lock.owner = new
