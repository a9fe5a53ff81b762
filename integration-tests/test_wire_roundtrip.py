"""isc.core messages through a real broker with plain pika, on the isclib 1.x topology.

A "client" and a "service" peer each have their own BlockingConnection with publisher
confirms, so a mandatory publish nobody can receive raises ``UnroutableError``.
"""

from __future__ import annotations

import datetime
import decimal
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from isc.core.codecs import AbstractCodec
from isc.core.errors import RemoteException
from isc.core.naming import (
    broadcast_queue_name,
    fanout_exchange_name,
    reply_queue_name,
    service_queue_name,
    service_routing_key,
)
from isc.core.protocol import (
    PROTOCOL_VERSION,
    Envelope,
    Headers,
    Notification,
    Reply,
    Request,
)
from isc_testing import WaitTimeout

RECEIVE_TIMEOUT = 5.0
SERVICE = "calc"


class Peer:
    """One AMQP connection and a channel with publisher confirms, speaking in Envelopes."""

    def __init__(self, url: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel: BlockingChannel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish(self, exchange: str, routing_key: str, envelope: Envelope) -> None:
        """Publish mandatory; raises UnroutableError if the broker returns it."""
        self.channel.basic_publish(
            exchange=exchange,
            routing_key=routing_key,
            body=envelope.body,
            properties=pika.BasicProperties(
                content_type=envelope.content_type,
                content_encoding=envelope.content_encoding,
                correlation_id=envelope.correlation_id,
                reply_to=envelope.reply_to,
                headers=dict(envelope.headers),
            ),
            mandatory=True,
        )

    def receive(self, queue: str, timeout: float = RECEIVE_TIMEOUT) -> Envelope:
        """The next message on ``queue`` (acked), or WaitTimeout after ``timeout`` seconds."""
        try:
            for method, properties, body in self.channel.consume(queue, inactivity_timeout=timeout):
                if method is None:
                    raise WaitTimeout(f"no message on {queue} within {timeout}s")
                self.channel.basic_ack(method.delivery_tag)
                return Envelope(
                    body=body,
                    content_type=properties.content_type,
                    content_encoding=properties.content_encoding,
                    correlation_id=properties.correlation_id,
                    reply_to=properties.reply_to,
                    headers=properties.headers or {},
                )
        finally:
            self.channel.cancel()
        raise AssertionError("unreachable: consume() stopped yielding")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self.connection.is_open:
            self.connection.close()


@pytest.fixture
def connect(amqp_url: str) -> Iterator[Callable[[], Peer]]:
    """Make peers on the run's broker; all are closed after the test."""
    peers: list[Peer] = []

    def make() -> Peer:
        peer = Peer(amqp_url)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()


def declare_exchanges(channel: BlockingChannel, exchange: str) -> None:
    """isclib 1.x's two exchanges (the ``exchange`` fixture deletes them afterwards)."""
    channel.exchange_declare(exchange, exchange_type="direct", durable=False, auto_delete=False)
    channel.exchange_declare(
        fanout_exchange_name(exchange), exchange_type="fanout", durable=False, auto_delete=False
    )


def declare_service_queue(channel: BlockingChannel, exchange: str, service: str) -> str:
    """The service's shared queue; auto-delete here, so it goes when its consumer does."""
    queue = service_queue_name(exchange, service)
    channel.queue_declare(queue, durable=False, auto_delete=True)
    channel.queue_bind(queue, exchange, routing_key=service_routing_key(exchange, service))
    return queue


def declare_reply_queue(channel: BlockingChannel, exchange: str) -> str:
    """A client's exclusive reply queue, bound to the exchange under its own name."""
    queue = reply_queue_name()
    channel.queue_declare(queue, exclusive=True)
    channel.queue_bind(queue, exchange, routing_key=queue)
    return queue


def call(
    client: Peer,
    service: Peer,
    exchange: str,
    codec: AbstractCodec,
    request: Request,
    respond: Callable[[Request], Reply],
) -> tuple[Request, Envelope, Reply, Envelope]:
    """One request and its reply over the broker; returns what each side received."""
    declare_exchanges(service.channel, exchange)
    service_queue = declare_service_queue(service.channel, exchange, SERVICE)
    client.publish(exchange, service_routing_key(exchange, SERVICE), request.encode(codec))

    request_envelope = service.receive(service_queue)
    received = Request.decode(request_envelope, codec)
    assert received.reply_to is not None
    service.publish(exchange, received.reply_to, respond(received).encode(codec))

    reply_envelope = client.receive(received.reply_to)
    return received, request_envelope, Reply.decode(reply_envelope, codec), reply_envelope


def _check_properties(envelope: Envelope, codec: AbstractCodec, correlation_id: str) -> None:
    assert envelope.content_type == codec.content_type
    assert envelope.content_encoding == codec.content_encoding
    assert envelope.correlation_id == correlation_id
    assert envelope.headers[Headers.PROTOCOL] == PROTOCOL_VERSION


PLAIN_ARGS: tuple[Any, ...] = (1, -(2**40), 3.25, "twö", None, True, [1, "a", [None]], {"k": [1]})
PLAIN_KWARGS: dict[str, Any] = {"scale": 2, "name": "ünïcode ✓", "nested": {"a": {"b": []}}}


def test_request_and_reply_round_trip(
    connect: Callable[[], Peer], exchange: str, codec: AbstractCodec
) -> None:
    client, service = connect(), connect()
    declare_exchanges(client.channel, exchange)
    reply_to = declare_reply_queue(client.channel, exchange)
    deadline = time.time() + 30
    request = Request("add", PLAIN_ARGS, PLAIN_KWARGS, reply_to=reply_to, deadline=deadline)
    result = {"sum": 3, "items": [1, 2.5, "x"], "none": None}

    received, request_envelope, reply, reply_envelope = call(
        client, service, exchange, codec, request, lambda r: Reply.success(r.correlation_id, result)
    )

    _check_properties(request_envelope, codec, request.correlation_id)
    assert request_envelope.reply_to == reply_to
    assert received.method == "add"
    assert received.args == PLAIN_ARGS
    assert received.kwargs == PLAIN_KWARGS
    assert received.correlation_id == request.correlation_id
    assert received.reply_to == reply_to
    assert received.deadline == pytest.approx(deadline, abs=0.001)

    _check_properties(reply_envelope, codec, request.correlation_id)
    assert reply.ok
    assert reply.correlation_id == request.correlation_id
    assert reply.result == result
    assert reply.to_exception() is None


@pytest.mark.parametrize(
    ("error", "error_type"),
    [("boom", "ValueError"), ("no such user 7", "app.errors.NotFound"), ("untyped", None)],
)
def test_error_reply_round_trip(
    connect: Callable[[], Peer],
    exchange: str,
    codec: AbstractCodec,
    error: str,
    error_type: str | None,
) -> None:
    client, service = connect(), connect()
    declare_exchanges(client.channel, exchange)
    request = Request("explode", reply_to=declare_reply_queue(client.channel, exchange))

    _, _, reply, reply_envelope = call(
        client,
        service,
        exchange,
        codec,
        request,
        lambda r: Reply.failure(r.correlation_id, error, error_type),
    )

    _check_properties(reply_envelope, codec, request.correlation_id)
    assert reply_envelope.headers.get(Headers.ERROR_TYPE) == error_type
    assert not reply.ok
    assert reply.error == error
    assert reply.error_type == error_type
    exc = reply.to_exception()
    assert isinstance(exc, RemoteException)
    assert str(exc) == error
    assert exc.remote_type == error_type


RICH_VALUES: dict[str, Any] = {
    "when": datetime.datetime(2024, 2, 29, 12, 30, 1, 250000, tzinfo=datetime.timezone.utc),
    "day": datetime.date(2024, 2, 29),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "price": decimal.Decimal("19.99"),
    "raw": b"\x00\xffbytes",
}


def test_rich_values_round_trip(
    connect: Callable[[], Peer], exchange: str, codec: AbstractCodec
) -> None:
    if codec.content_type == "json":
        pytest.skip("plain JSON has no datetime, UUID, Decimal or bytes")
    client, service = connect(), connect()
    declare_exchanges(client.channel, exchange)
    request = Request(
        "store", (RICH_VALUES,), reply_to=declare_reply_queue(client.channel, exchange)
    )

    received, _, reply, _ = call(
        client, service, exchange, codec, request, lambda r: Reply.success(r.correlation_id, r.args)
    )

    assert received.args == (RICH_VALUES,)
    assert reply.result in ([RICH_VALUES], (RICH_VALUES,))


@pytest.mark.parametrize(
    ("args", "kwargs", "legacy_body_length"),
    [
        (({"user": 7, "tags": ["a", "b"]},), {}, 2),  # isclib 1.x form: [event, data]
        ((1, "two", [3]), {"flag": True}, 3),  # isc 2 form: [event, args, kwargs]
        ((), {"only": "kwargs"}, 3),
    ],
    ids=["legacy-one-arg", "args-and-kwargs", "kwargs-only"],
)
def test_notification_reaches_every_fanout_queue(
    connect: Callable[[], Peer],
    exchange: str,
    codec: AbstractCodec,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    legacy_body_length: int,
) -> None:
    publisher, listener = connect(), connect()
    declare_exchanges(publisher.channel, exchange)
    queues = []
    for _ in range(2):
        queue = broadcast_queue_name()
        listener.channel.queue_declare(queue, exclusive=True)
        listener.channel.queue_bind(queue, fanout_exchange_name(exchange))
        queues.append(queue)
    notification = Notification("user_updated", args, kwargs)

    publisher.publish(fanout_exchange_name(exchange), "", notification.encode(codec))

    for queue in queues:
        envelope = listener.receive(queue)
        _check_properties(envelope, codec, notification.correlation_id)
        assert len(codec.decode(envelope.body)) == legacy_body_length
        received = Notification.decode(envelope, codec)
        assert received.event == "user_updated"
        assert received.args == args
        assert received.kwargs == kwargs
        assert received.correlation_id == notification.correlation_id


def test_unroutable_mandatory_request_is_returned(
    connect: Callable[[], Peer], exchange: str, codec: AbstractCodec
) -> None:
    client = connect()
    declare_exchanges(client.channel, exchange)
    request = Request("anything", reply_to=declare_reply_queue(client.channel, exchange))

    with pytest.raises(pika.exceptions.UnroutableError) as caught:
        client.publish(exchange, service_routing_key(exchange, "nobody"), request.encode(codec))

    (returned,) = caught.value.messages
    assert returned.method.reply_text == "NO_ROUTE"
    assert returned.properties.correlation_id == request.correlation_id
    assert returned.properties.content_type == codec.content_type
    assert Request.decode(Envelope(returned.body, codec.content_type), codec).method == "anything"
