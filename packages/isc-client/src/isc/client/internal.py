"""isc-client's internal API: what isc-server (and isc's own tools) build on.

Not for applications: these names may change in any release, and isc-server pins the
isc-client versions it works with. They are declared here, in one place, so that no other
distribution imports an underscore module of isc-client.

- :class:`Transport`: the one seam between Client/Node and the AMQP machinery (publish,
  consume through a setup handler, ack, connection events), with :class:`AmqpChannel` (the
  part of pika's channel isc uses) and :class:`TransportFactory`; :class:`AmqpWorker` is the
  real one, ``isc.client.testing.memory.MemoryTransport`` an in-memory one;
- :class:`AmqpWorker`: the I/O worker that owns a connection (connect, reconnect, publish,
  consume through a setup handler, confirms), with :class:`Outgoing` items to publish and
  :func:`received_envelope` to read a delivery;
- :class:`UndecodableProperties`: the marker a delivery carries when its properties could not
  be decoded (see docs/reliability.md, "Hostile input");
- :func:`select_wire` / :data:`ENV_FASTPATH`: stock pika or the fast path
  (:mod:`isc.client._fastpath`), and :func:`gevent_ioloop` for a node's loop on the hub.
"""

from __future__ import annotations

from typing import Any

from ._client import DEFAULT_MAX_MESSAGE_SIZE
from ._connection import AmqpWorker, Outgoing, received_envelope, root_cause
from ._frames import UndecodableProperties
from ._transport import (
    AmqpChannel,
    DeliveryCallback,
    ReturnHandler,
    SetupHandler,
    Transport,
    TransportFactory,
)
from ._wire import ENV_FASTPATH, Wire, fastpath_requested, select_wire

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "ENV_FASTPATH",
    "AmqpChannel",
    "AmqpWorker",
    "DeliveryCallback",
    "Outgoing",
    "ReturnHandler",
    "SetupHandler",
    "Transport",
    "TransportFactory",
    "UndecodableProperties",
    "Wire",
    "fastpath_requested",
    "gevent_ioloop",
    "gevent_loop_types",
    "received_envelope",
    "root_cause",
    "select_wire",
]


def gevent_ioloop() -> Any:
    """A pika ``IOLoop`` on gevent's hub, from the fast path (imports gevent)."""
    from ._fastpath import gevent_ioloop as make

    return make()


def gevent_loop_types() -> tuple[type[Any], type[Any]]:
    """The classes of :func:`gevent_ioloop`'s loop and poller (imports gevent)."""
    from ._fastpath import gevent_loop_types as types

    return types()
