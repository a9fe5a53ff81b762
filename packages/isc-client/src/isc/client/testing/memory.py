"""An in-memory broker and transport: a Client and a Node talking without RabbitMQ.

:class:`MemoryBroker` keeps exchanges (direct and fanout, plus the default exchange ``""``),
queues and bindings in this process; :meth:`MemoryBroker.transport` is a
:class:`~isc.client.internal.TransportFactory`, so ``Client(transport=broker.transport)`` and
``Node(transport=broker.transport)`` run their own code unchanged over it::

    broker = MemoryBroker()
    node = Node(transport=broker.transport)          # serves through the broker
    client = Client(transport=broker.transport)      # calls through it

What it models: routing by exchange type and routing key, ``mandatory`` messages returned to
their publisher when no queue takes them (``312 NO_ROUTE``), consumers with ``auto_ack`` or
manual acks and a per-consumer ``basic_qos`` prefetch, round-robin between the consumers of
a queue, redelivery (``redelivered=True``) of what a closed channel left unacked, exclusive
queues that go with their connection, auto-delete queues that go with their last consumer,
per-message ``expiration``, publisher confirms (acked at once), and channel errors on
mismatched redeclarations (406) or a passive declaration of a missing queue (404), after
which the transport reconnects as a real one does. Deliveries carry pika's own types
(``pika.spec.Basic.Deliver``, ``pika.spec.BasicProperties``).

What it does not: bytes on a wire (properties are passed as objects, so hostile frames,
frame sizes and heartbeats do not exist), persistence, vhosts, users, other exchange types,
flow control, a broker that fails. It proves nothing about messaging with RabbitMQ: the
integration suite does that.

Threads: each transport has a loop, like an ``AmqpWorker``'s. Its work (deliveries, returns,
the setup handler, timers, publishing) runs one piece at a time, with the loop's lock held,
on whichever thread finds the loop idle: the thread that submits a message, as with the
worker's fast path, or the transport's own loop thread (a greenlet under gevent's monkey
patching), which runs timers and the work left while the loop was busy and ends when idle.
A consumer's callback therefore runs while its transport's loop is held, never concurrently
with the rest of that transport's work; nothing here sleeps.
"""

from __future__ import annotations

import collections
import functools
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika.exceptions
import pika.frame
import pika.spec

from isc.client import _process
from isc.client._connection import Outgoing
from isc.client._future import FutureResult
from isc.client._transport import DeliveryCallback, ReturnHandler, SetupHandler
from isc.core import AccessRefusedError, ClientClosedError, ConnectionLostError, WrongThreadError

__all__ = ["MemoryBroker", "MemoryChannel", "MemoryTransport", "TRANSIENT_QUEUE_REFUSAL"]

log = logging.getLogger("isc.client.testing.memory")

Task = Callable[[], None]


class _Message:
    __slots__ = ("body", "exchange", "expires_at", "properties", "redelivered", "routing_key")

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.spec.BasicProperties,
        expires_at: float | None,
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.body = body
        self.properties = properties
        self.expires_at = expires_at
        self.redelivered = False


class _Consumer:
    __slots__ = ("auto_ack", "callback", "channel", "prefetch", "queue", "tag", "unacked")

    def __init__(
        self,
        tag: str,
        queue: _Queue,
        channel: MemoryChannel,
        callback: DeliveryCallback,
        auto_ack: bool,
        prefetch: int,
    ) -> None:
        self.tag = tag
        self.queue = queue
        self.channel = channel
        self.callback = callback
        self.auto_ack = auto_ack
        self.prefetch = prefetch
        self.unacked = 0

    def can_take(self) -> bool:
        return self.auto_ack or self.prefetch == 0 or self.unacked < self.prefetch


class _Queue:
    def __init__(
        self,
        name: str,
        *,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: dict[str, Any] | None,
        owner: MemoryTransport | None,
    ) -> None:
        self.name = name
        self.durable = durable
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.arguments = dict(arguments or {})
        self.owner = owner
        self.messages: collections.deque[_Message] = collections.deque()
        self.consumers: list[_Consumer] = []
        self.had_consumer = False
        self.next_consumer = 0


class _Exchange:
    def __init__(self, name: str, kind: str, durable: bool, auto_delete: bool) -> None:
        self.name = name
        self.kind = kind
        self.durable = durable
        self.auto_delete = auto_delete
        #: (queue name, routing key) pairs
        self.bindings: set[tuple[str, str]] = set()


class _ChannelError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text


class _ConnectionError(_ChannelError):
    """An error that closes the whole connection (e.g. 541), not only the channel."""


#: RabbitMQ 4.3's refusal of a transient non-exclusive queue (its deprecated feature
#: ``transient_nonexcl_queues``, denied by default since 4.3.0), as it closes the connection.
TRANSIENT_QUEUE_REFUSAL = (
    "INTERNAL_ERROR - Feature `transient_nonexcl_queues` is deprecated.\n"
    "Its use is not permitted per the configuration (overriding the default, which is "
    "permitted):\n    deprecated_features.permit.transient_nonexcl_queues = false"
)


class MemoryBroker:
    """Exchanges, queues and bindings in memory, shared by the transports built from it.

    Thread-safe. Subclasses may override :meth:`on_publish` (see every message published) and
    :meth:`no_route_text` (the text of a returned message).

    :param deny_transient_queues: refuse to declare a queue that is neither durable nor
        exclusive by closing the connection with ``541 INTERNAL_ERROR``, as RabbitMQ 4.3+
        does by default (its deprecated feature ``transient_nonexcl_queues``).
    """

    def __init__(self, *, deny_transient_queues: bool = False) -> None:
        self.deny_transient_queues = deny_transient_queues
        self._lock = threading.Lock()
        self._exchanges: dict[str, _Exchange] = {}
        self._queues: dict[str, _Queue] = {}
        self._transports: set[MemoryTransport] = set()
        self._touched: set[MemoryTransport] = set()  # transports given work under the lock
        self._tags = itertools.count(1)

    # -- for users ---------------------------------------------------------------------------

    def transport(self, url: str, exchange: str, **options: Any) -> MemoryTransport:
        """A new transport on this broker: a :class:`~isc.client.internal.TransportFactory`
        (pass ``transport=broker.transport`` to ``Client`` or ``Node``)."""
        return MemoryTransport(self, url, exchange, **options)

    def queues(self) -> dict[str, int]:
        """Queue name → how many messages wait in it (not delivered yet)."""
        with self._lock:
            return {name: len(queue.messages) for name, queue in self._queues.items()}

    def consumers(self, queue: str) -> int:
        """How many consumers ``queue`` has (0 when it does not exist)."""
        with self._lock:
            found = self._queues.get(queue)
            return len(found.consumers) if found is not None else 0

    def bindings(self, exchange: str) -> set[tuple[str, str]]:
        """The (queue, routing key) bindings of ``exchange`` (empty when it does not exist)."""
        with self._lock:
            found = self._exchanges.get(exchange)
            return set(found.bindings) if found is not None else set()

    def delete_queue(self, queue: str) -> bool:
        """Delete ``queue`` as ``rabbitmqctl delete_queue`` does: its messages go, and each of
        its consumers is cancelled (``basic.cancel`` to the channel's cancel callbacks).
        Return whether it existed."""

        def delete() -> bool:
            found = self._queues.get(queue)
            if found is None:
                return False
            for consumer in list(found.consumers):
                channel = consumer.channel
                channel.consumers.pop(consumer.tag, None)
                frame = pika.frame.Method(
                    channel.channel_number, pika.spec.Basic.Cancel(consumer_tag=consumer.tag)
                )
                for callback in list(channel.cancel_callbacks):
                    self._give(channel.transport, functools.partial(callback, frame))
            found.consumers.clear()
            self._delete_queue(found)
            return True

        return bool(self._run(delete))

    def close(self) -> None:
        """Stop every transport of this broker (they close their channels at once)."""
        with self._lock:
            transports = list(self._transports)
        for transport in transports:
            transport.stop(timeout=0)

    def on_publish(
        self, exchange: str, routing_key: str, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        """Called for every message published, before it is routed (on the publisher's loop,
        without the broker's lock). Does nothing; a subclass may record messages here."""

    def no_route_text(
        self, exchange: str, routing_key: str, properties: pika.spec.BasicProperties, body: bytes
    ) -> str:
        """The ``reply_text`` of a returned ``mandatory`` message: ``NO_ROUTE``, as RabbitMQ."""
        return "NO_ROUTE"

    # -- what channels do (under the lock) -------------------------------------------------

    def _run(self, fn: Callable[[], Any]) -> Any:
        """Run a broker operation under the lock; then the transports it gave work to run it
        (each on this thread if its loop is idle), outside the lock."""
        touched: set[MemoryTransport] = set()
        try:
            with self._lock:
                try:
                    return fn()
                finally:
                    touched, self._touched = self._touched, set()
        finally:
            for transport in touched:
                transport._kick()

    def _declare_exchange(
        self, name: str, kind: str, passive: bool, durable: bool, auto_delete: bool
    ) -> None:
        if kind not in ("direct", "fanout"):
            raise _ChannelError(503, f"COMMAND_INVALID - unknown exchange type '{kind}'")
        found = self._exchanges.get(name)
        if found is None:
            if passive:
                raise _ChannelError(404, f"NOT_FOUND - no exchange '{name}' in vhost '/'")
            self._exchanges[name] = _Exchange(name, kind, durable, auto_delete)
        elif not passive and (found.kind, found.durable, found.auto_delete) != (
            kind,
            durable,
            auto_delete,
        ):
            raise _ChannelError(
                406,
                f"PRECONDITION_FAILED - inequivalent arg 'type' or 'durable' for exchange "
                f"'{name}' in vhost '/'",
            )

    def _declare_queue(
        self,
        transport: MemoryTransport,
        name: str,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: dict[str, Any] | None,
    ) -> str:
        if not name:
            name = f"amq.gen-{uuid.uuid4().hex}"
        found = self._queues.get(name)
        if found is not None and found.exclusive and found.owner is not transport:
            raise _ChannelError(
                405, f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}'"
            )
        if passive:
            if found is None:
                raise _ChannelError(404, f"NOT_FOUND - no queue '{name}' in vhost '/'")
            return name
        if self.deny_transient_queues and not durable and not exclusive:
            raise _ConnectionError(541, TRANSIENT_QUEUE_REFUSAL)
        if found is None:
            self._queues[name] = _Queue(
                name,
                durable=durable,
                exclusive=exclusive,
                auto_delete=auto_delete,
                arguments=arguments,
                owner=transport if exclusive else None,
            )
        elif (found.durable, found.exclusive, found.auto_delete, found.arguments) != (
            durable,
            exclusive,
            auto_delete,
            dict(arguments or {}),
        ):
            raise _ChannelError(
                406,
                f"PRECONDITION_FAILED - inequivalent arg for queue '{name}' in vhost '/'",
            )
        return name

    def _bind(self, queue: str, exchange: str, routing_key: str) -> None:
        if queue not in self._queues:
            raise _ChannelError(404, f"NOT_FOUND - no queue '{queue}' in vhost '/'")
        found = self._exchanges.get(exchange)
        if found is None:
            raise _ChannelError(404, f"NOT_FOUND - no exchange '{exchange}' in vhost '/'")
        found.bindings.add((queue, routing_key))

    def _route(self, exchange: str, routing_key: str) -> list[_Queue] | None:
        """The queues a message goes to (None: no such exchange)."""
        if exchange == "":  # the default exchange: every queue, by name
            queue = self._queues.get(routing_key)
            return [queue] if queue is not None else []
        found = self._exchanges.get(exchange)
        if found is None:
            return None
        names = sorted(
            {q for q, key in found.bindings if found.kind == "fanout" or key == routing_key}
        )
        return [self._queues[name] for name in names if name in self._queues]

    def _publish(
        self,
        publisher: MemoryTransport,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.spec.BasicProperties,
        mandatory: bool,
    ) -> bool:
        """Route a message; return False when it is unroutable and ``mandatory``."""
        queues = self._route(exchange, routing_key)
        if queues is None:
            raise _ChannelError(404, f"NOT_FOUND - no exchange '{exchange}' in vhost '/'")
        if not queues:
            return not mandatory
        expires_at = None
        if properties.expiration is not None:
            expires_at = time.monotonic() + int(properties.expiration) / 1000
        for queue in queues:
            queue.messages.append(_Message(exchange, routing_key, body, properties, expires_at))
            self._dispatch(queue)
        return True

    def _consume(
        self,
        channel: MemoryChannel,
        queue: str,
        callback: DeliveryCallback,
        auto_ack: bool,
        tag: str | None,
    ) -> str:
        found = self._queues.get(queue)
        if found is None:
            raise _ChannelError(404, f"NOT_FOUND - no queue '{queue}' in vhost '/'")
        if found.exclusive and found.owner is not channel.transport:
            raise _ChannelError(
                405, f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{queue}'"
            )
        tag = tag or f"ctag-memory-{next(self._tags)}"
        consumer = _Consumer(tag, found, channel, callback, auto_ack, channel.prefetch)
        found.consumers.append(consumer)
        found.had_consumer = True
        channel.consumers[tag] = consumer
        self._dispatch(found)
        return tag

    def _cancel(self, channel: MemoryChannel, tag: str) -> None:
        consumer = channel.consumers.pop(tag, None)
        if consumer is None:
            return
        queue = consumer.queue
        if consumer in queue.consumers:
            queue.consumers.remove(consumer)
        if queue.auto_delete and queue.had_consumer and not queue.consumers:
            self._delete_queue(queue)

    def _ack(self, channel: MemoryChannel, tag: int, multiple: bool) -> None:
        if multiple:
            tags = [t for t in channel.unacked if tag == 0 or t <= tag]
        elif tag in channel.unacked:
            tags = [tag]
        else:
            raise _ChannelError(406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")
        freed: set[_Queue] = set()
        for t in tags:
            consumer, _message = channel.unacked.pop(t)
            consumer.unacked -= 1
            freed.add(consumer.queue)
        for queue in freed:
            self._dispatch(queue)

    def _close_channel(self, channel: MemoryChannel) -> None:
        """The channel is gone: requeue what it left unacked, drop its consumers, and (with
        its connection) its exclusive queues."""
        for tag in list(channel.consumers):
            self._cancel(channel, tag)
        requeued: dict[str, list[_Message]] = {}
        for _tag, (consumer, message) in sorted(channel.unacked.items(), key=lambda i: i[0]):
            message.redelivered = True
            requeued.setdefault(consumer.queue.name, []).append(message)
        channel.unacked.clear()
        for name, messages in requeued.items():
            queue = self._queues.get(name)
            if queue is not None:
                queue.messages.extendleft(reversed(messages))
                self._dispatch(queue)
        for queue in list(self._queues.values()):
            if queue.exclusive and queue.owner is channel.transport:
                self._delete_queue(queue)

    def _delete_queue(self, queue: _Queue) -> None:
        self._queues.pop(queue.name, None)
        for exchange in self._exchanges.values():
            exchange.bindings = {b for b in exchange.bindings if b[0] != queue.name}

    def _dispatch(self, queue: _Queue) -> None:
        """Hand ``queue``'s messages to its consumers that can take them, round robin."""
        now = time.monotonic()
        while queue.messages and queue.consumers:
            message = queue.messages[0]
            if message.expires_at is not None and message.expires_at <= now:
                queue.messages.popleft()  # expired: dropped, as RabbitMQ does
                continue
            consumer = None
            count = len(queue.consumers)
            for i in range(count):
                candidate = queue.consumers[(queue.next_consumer + i) % count]
                if candidate.can_take():
                    consumer = candidate
                    queue.next_consumer = (queue.next_consumer + i + 1) % count
                    break
            if consumer is None:
                return  # every consumer is at its prefetch limit
            queue.messages.popleft()
            self._deliver(consumer, message)

    def _deliver(self, consumer: _Consumer, message: _Message) -> None:
        channel = consumer.channel
        channel.delivery_tag += 1
        tag = channel.delivery_tag
        if not consumer.auto_ack:
            consumer.unacked += 1
            channel.unacked[tag] = (consumer, message)
        method = pika.spec.Basic.Deliver(
            consumer_tag=consumer.tag,
            delivery_tag=tag,
            redelivered=message.redelivered,
            exchange=message.exchange,
            routing_key=message.routing_key,
        )
        callback = consumer.callback

        def deliver() -> None:
            if channel.is_open:  # else it was requeued when the channel closed
                callback(channel, method, message.properties, message.body)

        self._give(channel.transport, deliver)

    def _give(self, transport: MemoryTransport, task: Task) -> None:
        """Queue ``task`` on ``transport``'s loop (under the lock: keeps the order)."""
        transport._post(task)
        self._touched.add(transport)


class MemoryChannel:
    """The channel a :class:`MemoryTransport` lends its setup handler and its node: the
    :class:`~isc.client.internal.AmqpChannel` API (and ``basic_publish``), on a
    :class:`MemoryBroker`. Use it on its transport's loop only, as a pika channel."""

    def __init__(self, broker: MemoryBroker, transport: MemoryTransport, number: int) -> None:
        self.broker = broker
        self.transport = transport
        self.channel_number = number
        self.prefetch = 0
        self.delivery_tag = 0
        self.consumers: dict[str, _Consumer] = {}
        self.unacked: dict[int, tuple[_Consumer, _Message]] = {}
        #: Called with a ``basic.cancel`` frame when the broker cancels a consumer.
        self.cancel_callbacks: list[Callable[[Any], None]] = []
        self._open = True

    @property
    def is_open(self) -> bool:
        """Whether the channel is usable (not closed, nor closing after an error)."""
        return self._open

    def _do(
        self, operation: Callable[[], Any], callback: Callable[[Any], None] | None, reply: Any
    ) -> Any:
        """Run ``operation`` on the broker; answer ``callback`` on the loop, or fail the channel."""
        if not self._open:
            return None
        try:
            result = self.broker._run(operation)
        except _ChannelError as error:
            self._open = False
            reason: pika.exceptions.AMQPError = (
                pika.exceptions.ConnectionClosedByBroker(error.code, error.text)
                if isinstance(error, _ConnectionError)
                else pika.exceptions.ChannelClosedByBroker(error.code, error.text)
            )
            self.transport._post(lambda: self.transport._channel_failed(self, reason))
            self.transport._kick()
            return None
        if callback is not None:
            frame = pika.frame.Method(self.channel_number, reply(result))
            self.transport._post(lambda: callback(frame))
            self.transport._kick()
        return result

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
    ) -> None:
        """Declare a direct or fanout exchange."""
        self._do(
            lambda: self.broker._declare_exchange(
                exchange, exchange_type, passive, durable, auto_delete
            ),
            callback,
            lambda _: pika.spec.Exchange.DeclareOk(),
        )

    def queue_declare(
        self,
        queue: str,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        """Declare a queue (``""``: a server-named one, in the callback's frame)."""
        self._do(
            lambda: self.broker._declare_queue(
                self.transport, queue, passive, durable, exclusive, auto_delete, arguments
            ),
            callback,
            lambda name: pika.spec.Queue.DeclareOk(queue=name),
        )

    def queue_bind(
        self,
        queue: str,
        exchange: str,
        routing_key: str | None = None,
        arguments: dict[str, Any] | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key`` (default: the queue's name)."""
        key = queue if routing_key is None else routing_key
        self._do(
            lambda: self.broker._bind(queue, exchange, key),
            callback,
            lambda _: pika.spec.Queue.BindOk(),
        )

    def basic_qos(
        self,
        prefetch_size: int = 0,
        prefetch_count: int = 0,
        global_qos: bool = False,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        """Limit the unacked deliveries of each consumer started afterwards (0: no limit)."""

        def qos() -> None:
            self.prefetch = prefetch_count

        self._do(qos, callback, lambda _: pika.spec.Basic.QosOk())

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
        """Consume ``queue``: deliveries run ``on_message_callback`` on the loop."""
        tag = self._do(
            lambda: self.broker._consume(self, queue, on_message_callback, auto_ack, consumer_tag),
            callback,
            lambda tag: pika.spec.Basic.ConsumeOk(consumer_tag=tag),
        )
        return str(tag or "")

    def basic_cancel(
        self, consumer_tag: str = "", callback: Callable[[Any], None] | None = None
    ) -> None:
        """Stop a consumer; its unacked deliveries stay unacked."""
        self._do(
            lambda: self.broker._cancel(self, consumer_tag),
            callback,
            lambda _: pika.spec.Basic.CancelOk(consumer_tag=consumer_tag),
        )

    def add_on_cancel_callback(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(frame)`` on the loop when the broker cancels a consumer of this
        channel (see :meth:`MemoryBroker.delete_queue`)."""
        self.cancel_callbacks.append(callback)

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None:
        """Acknowledge a delivery (an unknown tag closes the channel, 406, as RabbitMQ)."""
        self._do(lambda: self.broker._ack(self, delivery_tag, multiple), None, None)

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> None:
        """Reject a delivery. Without ``requeue`` it is dropped: this broker has no
        dead-letter exchanges (RabbitMQ dead-letters it when the queue says where)."""
        if requeue:
            raise NotImplementedError("the in-memory broker does not requeue rejected messages")
        self._do(lambda: self.broker._ack(self, delivery_tag, False), None, None)

    def basic_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.spec.BasicProperties | None = None,
        mandatory: bool = False,
    ) -> None:
        """Publish a message; an unroutable ``mandatory`` one returns to this transport."""
        if not self._open:
            raise pika.exceptions.ChannelWrongStateError("Channel is closed.")
        properties = properties or pika.spec.BasicProperties()
        broker = self.broker
        broker.on_publish(exchange, routing_key, properties, body)
        routed = self._do(
            lambda: broker._publish(
                self.transport, exchange, routing_key, body, properties, mandatory
            ),
            None,
            None,
        )
        if routed is False:
            text = broker.no_route_text(exchange, routing_key, properties, body)
            method = pika.spec.Basic.Return(
                reply_code=312, reply_text=text, exchange=exchange, routing_key=routing_key
            )
            transport = self.transport
            transport._post(lambda: transport._returned(self, method, properties))
            transport._kick()

    def close(self) -> None:
        """Close the channel: its unacked deliveries go back to their queues."""
        if self._open:
            self._open = False
        self.broker._run(lambda: self.broker._close_channel(self))


class _Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Task) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False


class MemoryTransport:
    """A :class:`~isc.client.internal.Transport` on a :class:`MemoryBroker`.

    Built by :meth:`MemoryBroker.transport` with the keyword arguments ``AmqpWorker`` takes;
    ``url``, ``connect_timeout``, ``max_buffered``, ``confirms`` and ``fastpath`` do not apply
    (confirms are immediate: nothing is ever buffered). See the module's docstring for what
    runs where.
    """

    def __init__(
        self,
        broker: MemoryBroker,
        url: str,
        exchange: str,
        *,
        connect_timeout: float = 5.0,
        reconnect_timeout: float = 3.0,
        setup: SetupHandler,
        on_return: ReturnHandler,
        on_disconnect: Callable[[BaseException], None],
        name: str = "isc-client",
        logger: logging.Logger | None = None,
        max_buffered: int = 10_000,
        confirms: bool = True,
        on_channel_error: Callable[[BaseException], bool | None] | None = None,
        gevent: bool = False,
        fastpath: bool | None = None,
        on_refused: Callable[[AccessRefusedError], None] | None = None,
    ) -> None:
        self.broker = broker
        self.url = url
        self.exchange = exchange
        self._reconnect_timeout = reconnect_timeout
        self._setup = setup
        self._on_return = on_return
        self._on_disconnect = on_disconnect
        self._on_channel_error = on_channel_error
        self._name = name
        self._log = logger or log
        self.fork_generation = _process.fork_generation()
        self.gevent_mode = _process.gevent_patched() or gevent
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.generation = 0
        self.connections = 0
        self.ready_since = 0.0
        self.last_error: BaseException | None = None
        #: Always None: the in-memory broker has no users and refuses no credentials.
        self.refused: AccessRefusedError | None = None
        self.reply_to: str | None = None
        self.on_flushed: Callable[[], None] | None = None
        self.on_ready: Callable[[], None] | None = None
        self.stats = {"republished": 0, "nacked": 0, "abandoned": 0}
        self._channel: MemoryChannel | None = None
        self._channels = itertools.count(1)
        self._stopping = False
        self._started = False
        self._attempt = 0
        # The loop: whoever holds _loop runs its work; _mutex guards the rest.
        self._loop = threading.Lock()
        self._owner: int | None = None
        self._mutex = threading.Lock()
        self._wake = threading.Condition(self._mutex)
        self._tasks: collections.deque[Task] = collections.deque()
        self._timers: list[tuple[float, int, _Timer]] = []
        self._timer_seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._inbox: collections.deque[Outgoing] = collections.deque()
        self._parked: collections.deque[Outgoing] = collections.deque()
        self._flush_scheduled = False

    # -- the Transport API ---------------------------------------------------------------------

    @property
    def channel(self) -> MemoryChannel | None:
        """The open channel (on the loop only), or None while disconnected."""
        return self._channel

    @property
    def buffered(self) -> int:
        """Always 0: the in-memory broker confirms at once."""
        return 0

    def wait_confirmed(self, timeout: float | None = None) -> bool:
        """True at once: the in-memory broker confirms at once."""
        return True

    def start(self) -> None:
        """Connect: the setup handler runs on the loop (on this thread, if it is idle)."""
        with self.broker._lock:
            self.broker._transports.add(self)
        self._started = True
        self._post(self._connect)
        self._kick()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the channel (its unacked deliveries go back), drop exclusive queues, end."""
        if self.stopped.is_set():
            return
        self._stopping = True
        self._post(self._shutdown)
        self._kick()
        if timeout > 0 and not self._in_loop():
            self.stopped.wait(timeout)

    def abandon_after_fork(self) -> None:
        """In a forked child: forget everything (the broker's memory is the parent's)."""
        self._stopping = True
        self.ready.clear()
        self._inbox.clear()
        self._parked.clear()
        self.stopped.set()

    def submit(self, item: Outgoing, *, batch: bool = False) -> None:
        """Publish ``item`` on the loop: at once on this thread when the loop is idle (unless
        ``batch``), else when the loop gets to it."""
        if self._stopping:
            raise ClientClosedError("the client is stopped")
        with self._mutex:
            self._inbox.append(item)
            schedule = not self._flush_scheduled
            self._flush_scheduled = True
        if schedule:
            self._post(self._flush)
        if batch:
            with self._mutex:
                self._ensure_thread()
                self._wake.notify()
        else:
            self._kick()

    def wait_for(self, future: FutureResult, deadline: float) -> bool:
        """Wait for ``future`` until the monotonic ``deadline``; raises
        :class:`~isc.core.WrongThreadError` on the loop, whose work the reply would wait for."""
        if self._in_loop():
            raise WrongThreadError(
                f"a blocking call to {future.cannonical_name} was made on the isc client's "
                "I/O loop, which reads the replies: use call_async() there"
            )
        if future.done():
            return True
        self._kick()
        return future._wait_done(max(0.0, deadline - time.monotonic()))

    def queue_counts(self, queue: str, callback: Callable[[tuple[int, int] | None], None]) -> None:
        """Answer ``callback`` on the loop with how many consumers and waiting messages
        ``queue`` has (None when it does not exist or the transport is not connected)."""
        broker = self.broker

        def count() -> tuple[int, int] | None:
            found = broker._queues.get(queue)
            return (len(found.consumers), len(found.messages)) if found is not None else None

        answer = broker._run(count) if self.ready.is_set() else None
        self._post(lambda: callback(answer))
        self._kick()

    def wake_driver(self) -> None:
        """Nothing to do: callers never drive this loop while waiting."""

    def call_soon(self, callback: Task) -> None:
        """Run ``callback`` on the loop: at once when on it, or when it is idle."""
        if self._in_loop():
            callback()
            return
        self._post(callback)
        self._kick()

    def call_later(self, delay: float, callback: Task) -> object:
        """Run ``callback`` on the loop after ``delay`` seconds (the loop thread fires it)."""
        timer = _Timer(time.monotonic() + delay, callback)
        with self._mutex:
            heapq.heappush(self._timers, (timer.when, next(self._timer_seq), timer))
            self._ensure_thread()
            self._wake.notify()
        return timer

    def cancel_timer(self, handle: object) -> None:
        """Cancel a :meth:`call_later` timer."""
        if isinstance(handle, _Timer):
            handle.cancelled = True
            with self._mutex:
                self._wake.notify()

    # -- for tests -----------------------------------------------------------------------------

    def drop_connection(self) -> None:
        """Simulate a lost connection: the channel closes (its unacked deliveries are
        redelivered), ``on_disconnect`` runs, and the transport reconnects at once."""
        self.call_soon(lambda: self._lost(ConnectionLostError("connection lost (simulated)"), 0))

    # -- the loop ------------------------------------------------------------------------------

    def _in_loop(self) -> bool:
        return self._owner == threading.get_ident()

    def _post(self, task: Task) -> None:
        with self._mutex:
            self._tasks.append(task)

    def _ensure_thread(self) -> None:
        """Start the loop thread if it is not running (``_mutex`` held)."""
        if self._thread is None and not self.stopped.is_set():
            self._thread = threading.Thread(target=self._run_thread, name=self._name, daemon=True)
            self._thread.start()

    def _kick(self) -> None:
        """Run the loop's pending work on this thread, unless someone runs the loop already
        (then they run it before they let go)."""
        if self._in_loop():
            return  # the work runs when this thread's current piece of work returns
        while self._tasks and self._loop.acquire(blocking=False):
            try:
                self._owner = threading.get_ident()
                self._run_pending()
            finally:
                self._owner = None
                self._loop.release()

    def _run_pending(self) -> None:
        while True:
            with self._mutex:
                task: Task | None = None
                if self._tasks:
                    task = self._tasks.popleft()
                elif self._timers and self._timers[0][0] <= time.monotonic():
                    timer = heapq.heappop(self._timers)[2]
                    if not timer.cancelled:
                        task = timer.callback
                    else:
                        continue
            if task is None:
                return
            try:
                task()
            except Exception:
                self._log.exception("a callback on the in-memory transport's loop raised")

    def _run_thread(self) -> None:
        while True:
            with self._mutex:
                while True:
                    while self._timers and self._timers[0][2].cancelled:
                        heapq.heappop(self._timers)
                    if self.stopped.is_set() or (not self._tasks and not self._timers):
                        self._thread = None  # idle: the next timer or batch starts another
                        return
                    if self._tasks:
                        break
                    delay = self._timers[0][0] - time.monotonic()
                    if delay <= 0:
                        break
                    self._wake.wait(delay)
            with self._loop:
                self._owner = threading.get_ident()
                try:
                    self._run_pending()
                finally:
                    self._owner = None
            self._kick()  # work posted while we released the loop

    # -- on the loop ---------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._stopping:
            return
        channel = MemoryChannel(self.broker, self, next(self._channels))
        self._channel = channel
        self.generation += 1
        self._setup(channel, lambda: self._on_ready(channel))

    def _on_ready(self, channel: MemoryChannel) -> None:
        if channel is not self._channel or not channel.is_open:
            return
        self._attempt = 0
        self.ready_since = time.monotonic()
        self.connections += 1
        self.last_error = None
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready()
        while self._parked:
            self._publish(self._parked.popleft())
        self._flush()

    def _flush(self) -> None:
        with self._mutex:
            self._flush_scheduled = False
            items = list(self._inbox)
            self._inbox.clear()
        for item in items:
            if item.on_taken is not None:
                item.on_taken()
            if self.ready.is_set():
                self._publish(item)
            else:
                self._parked.append(item)
        if self._parked:
            now = time.monotonic()
            self._parked = collections.deque(
                i for i in self._parked if i.expiration_at is None or i.expiration_at > now
            )
        if self.on_flushed is not None:
            self.on_flushed()

    def _publish(self, item: Outgoing) -> None:
        if item.on_sent is not None and not item.on_sent():
            return  # the caller gave up already
        expiration = None
        if item.expiration_at is not None:
            remaining = item.expiration_at - time.monotonic()
            if remaining <= 0:
                return
            expiration = str(max(1, int(remaining * 1000)))
        envelope = item.envelope
        properties = pika.spec.BasicProperties(
            content_type=envelope.content_type,
            content_encoding=envelope.content_encoding,
            headers=dict(envelope.headers) if envelope.headers is not None else None,
            delivery_mode=2 if item.persistent else None,
            correlation_id=envelope.correlation_id,
            reply_to=self.reply_to if item.wants_reply else None,
            expiration=expiration,
        )
        channel = self._channel
        assert channel is not None
        try:
            channel.basic_publish(
                item.exchange, item.key, envelope.body, properties, item.mandatory
            )
        except pika.exceptions.AMQPError:
            self._parked.appendleft(item)  # the channel failed: after reconnecting
            return
        if item.on_published is not None:
            item.on_published()

    def _returned(
        self,
        channel: MemoryChannel,
        method: pika.spec.Basic.Return,
        properties: pika.spec.BasicProperties,
    ) -> None:
        if channel is self._channel:
            self._on_return(method, properties)

    def _channel_failed(self, channel: MemoryChannel, reason: BaseException) -> None:
        if channel is not self._channel or self._stopping:
            return
        explained = self._on_channel_error is not None and self._on_channel_error(reason)
        self._log.log(
            logging.DEBUG if explained else logging.WARNING,
            "%s closed by the in-memory broker: %s; reconnecting",
            "connection" if isinstance(reason, pika.exceptions.ConnectionClosed) else "channel",
            reason,
        )
        delay = min(self._reconnect_timeout, 0.1 * (2**self._attempt))
        self._attempt += 1
        self._lost(reason, delay)

    def _lost(self, reason: BaseException, reconnect_after: float) -> None:
        """The connection is gone: close the channel, tell the owner, reconnect."""
        channel, self._channel = self._channel, None
        was_ready = self.ready.is_set()
        self.ready.clear()
        if channel is not None:
            channel.close()
        self.last_error = reason
        if was_ready:
            self._on_disconnect(ConnectionLostError(f"connection lost: {reason}"))
        if self._stopping:
            return
        if reconnect_after <= 0:
            self._post(self._connect)
        else:
            self.call_later(reconnect_after, self._connect)

    def _shutdown(self) -> None:
        self._stopping = True
        self.ready.clear()
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        self._inbox.clear()
        self._parked.clear()
        with self.broker._lock:
            self.broker._transports.discard(self)
        with self._mutex:
            self._timers.clear()
            self.stopped.set()
            self._wake.notify()
