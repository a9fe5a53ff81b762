"""FakeClient: a Client over a private in-memory broker, for unit tests of code that calls
isc services.

Calls go through the real :class:`~isc.client.Client` (pending calls, reply decoding,
timeouts, the return of an unroutable request) over :mod:`isc.client.testing.memory`; the
canned answers are served by a consumer on each answered service's queue, as a node would.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, NamedTuple

import pika.spec

from isc.client._calls import CallTable
from isc.client._client import DEFAULT_MAX_MESSAGE_SIZE, Client
from isc.client._connection import Outgoing, received_envelope
from isc.client._transport import AmqpChannel, Transport
from isc.core import (
    DEFAULT_EXCHANGE,
    AbstractCodec,
    ConfigurationError,
    IscError,
    Notification,
    Reply,
    Request,
    ServiceNotFoundError,
    fanout_exchange_name,
    service_queue_name,
    validate_service_name,
)

from .memory import MemoryBroker

__all__ = ["FakeClient", "RecordedCall", "RecordedNotification"]

log = logging.getLogger("isc.client.testing")


class RecordedCall(NamedTuple):
    """A call a :class:`FakeClient` received, with the arguments as a service would see them."""

    service: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class RecordedNotification(NamedTuple):
    """A notification a :class:`FakeClient` was asked to send, as a listener would see it."""

    event: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class _CannedServices:
    """The other side of a :class:`FakeClient`: what a node and its listeners would see.

    It records every request and notification published on the fake's broker, and serves
    the answered services from their queues, on a transport of its own (its consumers run
    on that transport's loop). It refers to the fake's call table, never to the fake, so a
    dropped fake is freed as a ``Client`` is.
    """

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        #: the fake's pending calls (set once the fake is built)
        self.table: CallTable | None = None
        self.answers: dict[tuple[str, str], Any] = {}
        self.calls: list[RecordedCall] = []
        self.notifications: list[RecordedNotification] = []
        #: content type -> codec: the fake's codecs (set_codec adds to them)
        self.codecs: dict[str, AbstractCodec] = {}
        self.transport: Transport | None = None
        self._served: set[str] = set()
        self._channel: AmqpChannel | None = None

    def service_of(self, routing_key: str) -> str | None:
        prefix = service_queue_name(self.exchange, "")
        return routing_key[len(prefix) :] if routing_key.startswith(prefix) else None

    def request(self, properties: pika.spec.BasicProperties, body: bytes) -> Request | None:
        codec = self.codecs.get(properties.content_type or "")
        if codec is None:
            return None
        try:
            return Request.decode(received_envelope(properties, body), codec)
        except IscError:
            log.exception("FakeClient could not decode its own request")
            return None

    # -- the broker's view (on the publisher's loop) --------------------------------------------

    def published(
        self, exchange: str, routing_key: str, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        """Record requests and notifications, after the codec's round trip."""
        if exchange == self.exchange and properties.reply_to:
            service = self.service_of(routing_key)
            request = self.request(properties, body) if service else None
            if service and request is not None:
                self.calls.append(
                    RecordedCall(service, request.method, request.args, request.kwargs)
                )
        elif exchange == fanout_exchange_name(self.exchange):
            codec = self.codecs.get(properties.content_type or "")
            if codec is not None:
                notification = Notification.decode(received_envelope(properties, body), codec)
                self.notifications.append(
                    RecordedNotification(notification.event, notification.args, notification.kwargs)
                )

    def missing(self, service: str, method: str) -> str:
        return (
            f"FakeClient has no answer for {service}.{method}: give one with "
            f"fake.answer({service!r}, {method!r}, result)"
        )

    # -- the answering side (on its transport's loop) -------------------------------------------

    def setup(self, channel: AmqpChannel, ready: Any) -> None:
        self._channel = channel
        self._served.clear()
        channel.exchange_declare(
            self.exchange, exchange_type="direct", durable=False, auto_delete=False
        )
        channel.exchange_declare(
            fanout_exchange_name(self.exchange),
            exchange_type="fanout",
            durable=False,
            auto_delete=False,
        )
        for service in sorted({service for service, _ in self.answers}):
            self.serve(service)
        ready()

    def serve(self, service: str) -> None:
        """Consume ``service``'s queue (once a method of it has an answer)."""
        channel = self._channel
        if channel is None or service in self._served:
            return
        self._served.add(service)
        queue = service_queue_name(self.exchange, service)
        channel.queue_declare(queue, durable=False, exclusive=False, auto_delete=False)
        channel.queue_bind(queue, self.exchange, routing_key=queue)
        channel.basic_consume(queue, self.on_request, auto_ack=True)

    def on_request(
        self,
        channel: object,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        """Answer a request as a node would: a reply to its ``reply_to``, in its codec."""
        service = self.service_of(method.routing_key) or ""
        request = self.request(properties, body)
        cid = properties.correlation_id
        if request is None or not cid:
            return
        codec = self.codecs[properties.content_type]
        key = (service, request.method)
        if key not in self.answers:
            self.raise_in_caller(cid, ServiceNotFoundError(self.missing(*key)))
            return
        answer = self.answers[key]
        try:
            result = answer(*request.args, **request.kwargs) if callable(answer) else answer
        except IscError as exc:
            self.raise_in_caller(cid, exc)
            return
        except Exception as exc:
            # what a node sends for a method that raised
            reply = Reply.from_exception(cid, exc, f"{service}.{request.method}")
        else:
            reply = Reply.success(cid, result)
        try:
            envelope = reply.encode(codec)
        except IscError as exc:  # a node answers an unencodable result with the error
            envelope = Reply.from_exception(cid, exc).encode(codec)
        assert self.transport is not None
        assert properties.reply_to
        self.transport.submit(Outgoing(envelope, self.exchange, properties.reply_to))

    def raise_in_caller(self, cid: str, error: IscError) -> None:
        """Fail the call ``cid`` with ``error`` itself: an isc error an answer raised reaches
        its caller as the same object, which no reply on a wire could carry."""
        call = self.table.pending.get(cid) if self.table is not None else None
        if call is not None:
            call.future.reject(error)

    def on_return(
        self, method: pika.spec.Basic.Return, properties: pika.spec.BasicProperties
    ) -> None:
        """A reply whose caller is gone (a stopped fake): nothing to do."""

    def on_disconnect(self, error: BaseException) -> None:
        """Nothing to do: the answers are served again after the reconnect."""


class _FakeBroker(MemoryBroker):
    """The fake's private broker: its canned services see every message published, and a
    returned request names the answer it lacks."""

    def __init__(self, services: _CannedServices) -> None:
        super().__init__()
        self.services = services

    def on_publish(
        self, exchange: str, routing_key: str, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        self.services.published(exchange, routing_key, properties, body)

    def no_route_text(
        self, exchange: str, routing_key: str, properties: pika.spec.BasicProperties, body: bytes
    ) -> str:
        services = self.services
        service = services.service_of(routing_key)
        request = services.request(properties, body)
        if service is None or request is None:
            return "NO_ROUTE"
        return f"NO_ROUTE - {services.missing(service, request.method)}"


class FakeClient(Client):
    """A :class:`~isc.client.Client` that answers calls from canned answers and records
    calls and notifications, without a broker.

    Give it to the code under test instead of a real client (a constructor argument, or
    ``monkeypatch.setattr(module, "client", FakeClient())`` for a module-level client). It
    is a ``Client``, so every way of calling works: ``fake.users.get_user(1)``,
    ``fake.invoke("users", "get_user", 1)``, ``call_async``, ``notify``.

    It is a real ``Client`` over a private in-memory broker
    (:mod:`isc.client.testing.memory`): calls go through the client's own code (pending
    calls, reply decoding, timeouts); a consumer on each answered service's queue serves the
    answers as a node would; a call to a service without answers comes back unroutable, as on
    RabbitMQ. Arguments, results and notifications go through the codec as on the wire, so a
    value the codec cannot carry fails here as it would in production, and what is recorded
    and returned is what the other side would get (a tuple arrives as a list in JSON).

    :param exchange: the exchange service names are checked against.
    :param codec: the codec (default :class:`~isc.core.TypedJSONCodec`, as ``Client``).
    :param max_message_size: as ``Client``'s: a larger request or notification fails with
        :class:`~isc.core.MessageTooLargeError`.
    """

    def __init__(
        self,
        exchange: str = DEFAULT_EXCHANGE,
        codec: AbstractCodec | type[AbstractCodec] | None = None,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        services = _CannedServices(exchange)
        broker = _FakeBroker(services)
        super().__init__(
            host="memory://fake-client",
            exchange=exchange,
            codec=codec,
            max_message_size=max_message_size,
            transport=broker.transport,
        )
        services.table = self._calls
        services.codecs[self.codec.content_type] = self.codec
        self._services = services
        self._broker = broker
        #: Every call, in order, with its arguments after the codec's round trip.
        self.calls: list[RecordedCall] = services.calls
        #: Every notification, in order, with its arguments after the codec's round trip.
        self.notifications: list[RecordedNotification] = services.notifications
        answering = broker.transport(
            "memory://fake-client",
            self._exchange,
            connect_timeout=1,
            reconnect_timeout=1,
            setup=services.setup,
            on_return=services.on_return,
            on_disconnect=services.on_disconnect,
            name="isc-fake-services",
        )
        services.transport = answering
        answering.start()
        self.start()
        # Registered after Client's own finalizer, so it runs first (CPython calls the
        # finalizers of an object newest first): a dropped fake closes its broker quietly
        # instead of warning about a connection that was never more than memory.
        weakref.finalize(self, broker.close)

    def answer(self, service: str, method: str, result: Any) -> None:
        """Answer every call of ``service.method`` with ``result``.

        A callable ``result`` is called with the call's arguments and its return value is the
        answer. An :class:`~isc.core.IscError` it raises reaches the caller as it is (raise
        ``RemoteException("...", remote_type="KeyError")`` or ``TimeoutException`` to
        simulate those); any other exception becomes the ``RemoteException`` a node would
        send. Calls of a method without an answer raise
        :class:`~isc.core.ServiceNotFoundError`.
        """
        validate_service_name(self._exchange, service)
        if not isinstance(method, str) or not method:
            raise ConfigurationError(f"method must be a non-empty string, got {method!r}")
        services = self._services
        services.answers[(service, method)] = result
        if services.transport is not None:
            services.transport.call_soon(lambda: services.serve(service))

    def calls_to(self, service: str, method: str | None = None) -> list[RecordedCall]:
        """The recorded calls of ``service`` (of its ``method`` only, if given)."""
        return [
            call
            for call in self.calls
            if call.service == service and (method is None or call.method == method)
        ]

    # -- Client ------------------------------------------------------------------------------

    def set_codec(self, codec: AbstractCodec | type[AbstractCodec]) -> None:
        """Use ``codec`` for the calls and notifications made from now on."""
        super().set_codec(codec)
        self._services.codecs[self.codec.content_type] = self.codec

    def stop(self, timeout: float = 5.0) -> None:
        """Stop as a ``Client`` does: calls are refused from now on."""
        super().stop(timeout)
        self._broker.close()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """True until :meth:`stop` (the in-memory broker is always there)."""
        return not self._closed and super().wait_connected(timeout)

    def __repr__(self) -> str:
        return (
            f"<isc FakeClient exchange={self._exchange!r} {len(self.calls)} call(s) "
            f"{len(self.notifications)} notification(s)>"
        )
