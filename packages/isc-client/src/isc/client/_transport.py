"""The one seam between isc's Client/Node and the AMQP machinery: :class:`Transport`.

:class:`~isc.client.Client` (through its :class:`~isc.client._calls.CallTable`) and
``isc.server.Node`` publish, consume, ack and hear about the connection only through a
:class:`Transport`. :class:`~isc.client._connection.AmqpWorker` is the real one (a pika
connection); :class:`isc.client.testing.memory.MemoryTransport` is an in-memory one, for
tests and embedding. Both are built by a :class:`TransportFactory`, called with the keyword
arguments ``AmqpWorker`` takes.

What runs where: a transport has a loop, like pika's ``IOLoop``. The setup handler, the
consumers' callbacks, ``on_return``, ``on_disconnect``, ``on_channel_error``, ``on_flushed``,
``on_ready``, timers and an :class:`~isc.client._connection.Outgoing`'s callbacks all run on
it, one at a time; the channel may only be used there. "On the loop" means on the loop's own
thread, or on a thread that holds the loop for the moment (a shared loop lends itself to a
caller that finds it idle, see ``AmqpWorker.submit``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import logging

    import pika.spec

    from isc.core import AccessRefusedError

    from ._connection import Outgoing
    from ._future import FutureResult

__all__ = [
    "AmqpChannel",
    "DeliveryCallback",
    "ReturnHandler",
    "SetupHandler",
    "Transport",
    "TransportFactory",
]

#: A consumer: ``(channel, method, properties, body)``, as pika calls it; ``method`` is a
#: ``pika.spec.Basic.Deliver`` and ``properties`` a ``pika.spec.BasicProperties``.
DeliveryCallback = Callable[
    [Any, "pika.spec.Basic.Deliver", "pika.spec.BasicProperties", bytes], None
]


class AmqpChannel(Protocol):
    """The part of pika's ``Channel`` isc uses (on the loop only): what setup handlers declare
    and consume with, and how the node acks and stops consuming.

    pika's ``pika.channel.Channel`` satisfies it; so does the in-memory broker's channel. The
    ``callback`` arguments take the broker's answer (a ``pika.frame.Method``), later, on the
    loop; declarations and bindings are pipelined, so a setup handler need not wait for them.
    """

    @property
    def is_open(self) -> bool:
        """Whether the channel is usable (not closed or closing). Used by the node only."""

    def exchange_declare(
        self,
        exchange: str,
        exchange_type: str = "direct",
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> Any:
        """Declare an exchange (``direct`` or ``fanout`` in isc); a mismatch closes the channel."""

    def queue_declare(
        self,
        queue: str,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> Any:
        """Declare a queue. ``exclusive`` queues belong to the connection and go with it;
        ``auto_delete`` ones go when their last consumer does. Declaring an existing queue
        with other settings closes the channel (406); ``passive`` only checks it exists (404)."""

    def queue_bind(
        self,
        queue: str,
        exchange: str,
        routing_key: str | None = None,
        arguments: dict[str, Any] | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> Any:
        """Route the messages ``exchange`` gets with ``routing_key`` (every one, on a fanout)
        to ``queue``."""

    def basic_qos(
        self,
        prefetch_size: int = 0,
        prefetch_count: int = 0,
        global_qos: bool = False,
        callback: Callable[[Any], None] | None = None,
    ) -> Any:
        """Let each consumer started afterwards hold at most ``prefetch_count`` unacked
        messages (0: no limit). Used by the node only."""

    def basic_consume(
        self,
        queue: str,
        on_message_callback: DeliveryCallback,
        auto_ack: bool = False,
        exclusive: bool = False,
        consumer_tag: str | None = None,
        arguments: dict[str, Any] | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> str:
        """Deliver ``queue``'s messages to ``on_message_callback`` on the loop; return the
        consumer tag. Without ``auto_ack``, each delivery waits for :meth:`basic_ack`."""

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> Any:
        """Acknowledge delivery ``delivery_tag`` (and every earlier one, with ``multiple``).
        Used by the node only."""

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> Any:
        """Reject delivery ``delivery_tag``: requeue it, or (``requeue=False``) drop it or
        dead-letter it where its queue says. Used by the node only."""

    def basic_cancel(
        self, consumer_tag: str = "", callback: Callable[[Any], None] | None = None
    ) -> Any:
        """Stop the consumer ``consumer_tag`` (unacked deliveries stay unacked). Node only."""

    def add_on_cancel_callback(self, callback: Callable[[Any], None]) -> Any:
        """Call ``callback(frame)`` (on the loop) when the broker cancels a consumer of this
        channel (``basic.cancel``: its queue was deleted, or its cluster member is gone);
        ``frame.method.consumer_tag`` names it. The consumer is gone: nothing more arrives."""


#: Declares what a connection needs on its fresh channel, then calls ``ready()`` (on the loop).
SetupHandler = Callable[[AmqpChannel, Callable[[], None]], None]
#: Called on the loop with a ``mandatory`` message the broker could not route.
ReturnHandler = Callable[["pika.spec.Basic.Return", "pika.spec.BasicProperties"], None]


class Transport(Protocol):
    """A connection to a broker, as Client and Node use it: publish, consume (through the
    setup handler it was built with), ack (through :attr:`channel`), connection events.

    Built by a :class:`TransportFactory` with its handlers: ``setup(channel, ready)`` on every
    fresh channel, ``on_return(method, properties)`` for unroutable ``mandatory`` messages,
    ``on_disconnect(error)`` when a ready connection drops, ``on_channel_error(reason)`` when
    the broker closes the channel, or the connection while it is being set up (e.g. 541 for a
    refused queue declaration); then the transport reconnects. ``on_channel_error`` returns
    True when it explained the close (logged why): the transport then logs its reconnect at
    DEBUG only. ``on_refused(error)`` (an ``AccessRefusedError``) when the broker refused
    the credentials: the transport stopped for good (``submit`` raises that error from then
    on). Every attribute below is used by isc; those only one side uses say so.
    """

    #: Set while connected and set up (the setup handler called ``ready``); cleared on a drop.
    ready: threading.Event
    #: Set once the transport stopped for good (:meth:`stop`, or abandoned after a fork).
    stopped: threading.Event
    #: Counts channels opened: a delivery's tag is only valid on the channel of its
    #: generation. Used by the node (whose acks must not outlive their channel).
    generation: int
    #: How many times the connection became ready. Client only (its unroutable-call retry).
    connections: int
    #: When the connection last became ready (``time.monotonic()``). Client only.
    ready_since: float
    #: Why the last connection attempt or connection failed (None once connected).
    last_error: BaseException | None
    #: Set (and the transport stopped) when the broker refused the credentials.
    refused: AccessRefusedError | None
    #: The reply queue of the current connection; the client's setup handler sets it.
    reply_to: str | None
    #: Called on the loop after each batch of submitted items is published. Node only (it
    #: acks the requests whose replies went out).
    on_flushed: Callable[[], None] | None
    #: Called on the loop each time the connection becomes ready (after :attr:`ready` is
    #: set). Client only (it wakes the threads in ``wait_connected``).
    on_ready: Callable[[], None] | None
    #: Counters of republished, nacked and abandoned ``confirm=True`` items. Client only.
    stats: dict[str, int]
    #: The process generation it was built in (``isc.client._process``). Client only.
    fork_generation: int
    #: Whether its loop runs under gevent. Client only (it replaces a transport built
    #: before gevent's monkey patching).
    gevent_mode: bool

    @property
    def channel(self) -> AmqpChannel | None:
        """The open channel (on the loop only), or None while disconnected."""

    @property
    def buffered(self) -> int:
        """How many ``confirm=True`` items the broker has not confirmed yet. Client only."""

    def start(self) -> None:
        """Start the loop and connect (returns at once; :attr:`ready` says when it is up)."""

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the loop, waiting up to ``timeout`` seconds."""

    def abandon_after_fork(self) -> None:
        """In a forked child: drop the parent's connection without a word on the wire.
        Client only."""

    def submit(self, item: Outgoing, *, batch: bool = False) -> None:
        """Publish ``item`` on the loop (any thread; raises ``ClientClosedError`` once
        stopped). ``batch=True``: more items follow soon, the loop may gather them."""

    def wait_for(self, future: FutureResult, deadline: float) -> bool:
        """Wait until ``future`` is done or the monotonic ``deadline`` passes; return whether
        it is done. Raises ``WrongThreadError`` on the loop. Client only."""

    def wake_driver(self) -> None:
        """Wake a caller blocked in :meth:`wait_for` on the loop's behalf. Client only."""

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the loop (any thread): at once when already there."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> object:
        """Run ``callback`` on the loop after ``delay`` seconds (call on the loop only);
        return a handle for :meth:`cancel_timer`. Client only."""

    def queue_counts(self, queue: str, callback: Callable[[tuple[int, int] | None], None]) -> None:
        """Ask how many consumers and ready messages ``queue`` has; ``callback((consumers,
        messages))`` runs on the loop with the answer, or None when the queue does not exist
        or the connection is down (call on the loop only). Client only: a call unanswered for
        a while checks its service's queue."""

    def cancel_timer(self, handle: object) -> None:
        """Cancel a :meth:`call_later` timer (on the loop only). Client only."""

    def wait_confirmed(self, timeout: float | None = None) -> bool:
        """Wait until every ``confirm=True`` item is confirmed; return whether it is.
        Client only."""


class TransportFactory(Protocol):
    """Builds a :class:`Transport`: ``AmqpWorker`` itself, or e.g. ``MemoryBroker.transport``.

    ``Client`` and ``Node`` call it with these keyword arguments (each passes the ones it
    sets); a factory accepts them all, and may ignore what does not apply to it (an
    in-memory transport has no URL to connect to, no fast path).
    """

    def __call__(
        self,
        url: str,
        exchange: str,
        *,
        connect_timeout: float,
        reconnect_timeout: float,
        setup: SetupHandler,
        on_return: ReturnHandler,
        on_disconnect: Callable[[BaseException], None],
        name: str = ...,
        logger: logging.Logger | None = ...,
        max_buffered: int = ...,
        confirms: bool = ...,
        on_channel_error: Callable[[BaseException], bool | None] | None = ...,
        gevent: bool = ...,
        fastpath: bool | None = ...,
        on_refused: Callable[[AccessRefusedError], None] | None = ...,
    ) -> Transport:
        """A new, not yet started transport."""
