"""How the I/O worker drives pika: :class:`Wire` uses pika's public API only.

The worker (:mod:`isc.client._connection`) asks its wire for a loop, a connection, a publish
and the end of a batch of publishes; it never touches pika's internals itself. This module's
:class:`Wire` is stock pika: ``SelectConnection``, ``IOLoop``, ``basic_publish`` with a
``BasicProperties``. :class:`isc.client._fastpath.FastWire` does the same work through
pika's private seams, faster; :func:`select_wire` picks one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import pika
import pika.channel
import pika.spec
from pika.adapters.select_connection import IOLoop

from isc.core import Envelope

__all__ = ["ENV_FASTPATH", "Wire", "fastpath_requested", "select_wire"]

log = logging.getLogger("isc.client")

#: The environment variable that switches the fast path off (``0``) for every Client and Node
#: of the process that does not choose itself.
ENV_FASTPATH = "ISC_PIKA_FASTPATH"


class Wire:
    """Stock pika, through its public API: what isc needs of it, and nothing more."""

    #: Whether this wire reaches into pika's internals (for logs and ``isc inspect``).
    fast = False
    name = "stock pika"
    #: The connection class :meth:`connect` makes.
    connection_class: type[pika.SelectConnection] = pika.SelectConnection

    def ioloop(self, *, gevent: bool) -> IOLoop:
        """The loop a worker runs (under gevent's patching pika's own loop cooperates)."""
        return IOLoop()

    def shares_loop(self, ioloop: IOLoop) -> bool:
        """Whether callers may enter ``ioloop`` from their own threads (a shared loop)."""
        return False

    def connect(
        self,
        parameters: pika.connection.Parameters,
        ioloop: IOLoop,
        *,
        on_open: Callable[[Any], None],
        on_open_error: Callable[[Any, BaseException], None],
        on_close: Callable[[Any, BaseException], None],
    ) -> pika.SelectConnection:
        """Start connecting on ``ioloop``."""
        return self.connection_class(
            parameters,
            on_open_callback=on_open,
            on_open_error_callback=on_open_error,
            on_close_callback=on_close,
            custom_ioloop=ioloop,
        )

    def publish(
        self,
        channel: pika.channel.Channel,
        exchange: str,
        routing_key: str,
        envelope: Envelope,
        *,
        reply_to: str | None,
        expiration: str | None,
        mandatory: bool,
        persistent: bool = False,
    ) -> None:
        """Publish ``envelope`` (raises pika's ``AMQPError`` on a closed channel);
        ``persistent``: with ``delivery_mode=2``."""
        properties = pika.spec.BasicProperties(
            content_type=envelope.content_type,
            content_encoding=envelope.content_encoding,
            headers=dict(envelope.headers) if envelope.headers is not None else None,
            delivery_mode=2 if persistent else None,
            correlation_id=envelope.correlation_id,
            reply_to=reply_to,
            expiration=expiration,
        )
        channel.basic_publish(exchange, routing_key, envelope.body, properties, mandatory)

    def start_batch(self, connection: Any) -> None:
        """Publishes follow until :meth:`end_batch` (stock pika writes each at once)."""

    def end_batch(self, connection: Any) -> None:
        """The batch is complete."""

    def close_after_fork(self, ioloop: IOLoop, connection: Any) -> None:
        """In a forked child, drop the parent's loop and connection without using them.

        Stock pika has no public way to close a connection's socket without speaking on it,
        so the child's copies of the descriptors stay open (unused) until the child exits."""


def fastpath_requested(option: bool | None) -> bool:
    """Whether the fast path is wanted: ``option`` if given, else ``ISC_PIKA_FASTPATH``
    (anything but ``0``, ``false``, ``no`` or ``off`` means yes; unset means yes)."""
    if option is not None:
        return bool(option)
    value = os.environ.get(ENV_FASTPATH, "").strip().lower()
    return value not in ("0", "false", "no", "off")


_WARNED: set[str] = set()


def select_wire(option: bool | None = None) -> Wire:
    """The wire for a new worker: the fast path when requested and the installed pika is one
    the tests cover, else stock pika (with one log line when pika is the reason)."""
    if not fastpath_requested(option):
        return Wire()
    version = _pika_version()
    from . import _fastpath

    if version not in _fastpath.TESTED_PIKA:
        text = pika.__version__
        if text not in _WARNED:
            _WARNED.add(text)
            log.warning(
                "pika %s is not a release isc's fast path was tested with (%s): running on "
                "stock pika",
                text,
                ", ".join(f"{major}.{minor}" for major, minor in _fastpath.TESTED_PIKA),
            )
        return Wire()
    return _fastpath.FastWire()


def _pika_version() -> tuple[int, int]:
    parts = str(pika.__version__).split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):  # pragma: no cover - an odd version string
        return (0, 0)
