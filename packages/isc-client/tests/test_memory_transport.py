"""isc.client.testing.memory: the in-memory broker and transport, and a Client over them.

A fake proves nothing about RabbitMQ (the integration suite does); these tests pin down what
the in-memory broker models, so that tests built on it mean what they say.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pika.spec
import pytest

from isc.client import Client
from isc.client.internal import AmqpChannel, Outgoing
from isc.client.testing import wait_for
from isc.client.testing.memory import MemoryBroker, MemoryTransport
from isc.core import Envelope, ServiceNotFoundError, TimeoutException

Delivery = tuple[str, int, bool, bytes]


class Peer:
    """One connection to the broker: declares with ``declare`` and records what it gets."""

    def __init__(self, broker: MemoryBroker, declare: Callable[[AmqpChannel, Peer], None]) -> None:
        self.declare = declare
        self.received: list[Delivery] = []
        self.returned: list[pika.spec.Basic.Return] = []
        self.disconnects: list[BaseException] = []
        self.errors: list[BaseException] = []
        self.transport: MemoryTransport = broker.transport(
            "memory://",
            "x",
            connect_timeout=1,
            reconnect_timeout=0.05,
            setup=self.setup,
            on_return=lambda method, properties: self.returned.append(method),
            on_disconnect=self.disconnects.append,
            on_channel_error=self.errors.append,
        )
        self.transport.start()

    def setup(self, channel: AmqpChannel, ready: Callable[[], None]) -> None:
        self.declare(channel, self)
        ready()

    def on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        assert isinstance(method, pika.spec.Basic.Deliver)
        assert isinstance(properties, pika.spec.BasicProperties)
        self.received.append((method.routing_key, method.delivery_tag, method.redelivered, body))

    def publish(self, exchange: str, key: str, body: bytes, *, mandatory: bool = False) -> None:
        envelope = Envelope(body=body, content_type="json", correlation_id="c1")
        self.transport.submit(Outgoing(envelope, exchange, key, mandatory=mandatory))


def topology(channel: AmqpChannel) -> None:
    channel.exchange_declare("x", exchange_type="direct")
    channel.exchange_declare("x_fanout", exchange_type="fanout")


@pytest.fixture
def broker() -> Iterator[MemoryBroker]:
    broker = MemoryBroker()
    yield broker
    broker.close()


def test_a_direct_exchange_routes_by_key_and_a_fanout_to_every_bound_queue(
    broker: MemoryBroker,
) -> None:
    def consumer(queue: str, key: str) -> Callable[[AmqpChannel, Peer], None]:
        def declare(channel: AmqpChannel, peer: Peer) -> None:
            topology(channel)
            channel.queue_declare(queue, exclusive=True, auto_delete=True)
            channel.queue_bind(queue, "x", routing_key=key)
            channel.queue_bind(queue, "x_fanout")
            channel.basic_consume(queue, peer.on_message, auto_ack=True)

        return declare

    a, b = Peer(broker, consumer("qa", "a")), Peer(broker, consumer("qb", "b"))
    a.publish("x", "a", b"to a")
    a.publish("x", "nobody", b"lost")  # not mandatory: dropped
    b.publish("x_fanout", "", b"to all")
    assert a.received == [("a", 1, False, b"to a"), ("", 2, False, b"to all")]
    assert b.received == [("", 1, False, b"to all")]
    assert a.returned == []


def test_an_unroutable_mandatory_message_returns_to_its_publisher(broker: MemoryBroker) -> None:
    peer = Peer(broker, lambda channel, peer: topology(channel))
    peer.publish("x", "nobody", b"call", mandatory=True)
    [returned] = peer.returned
    assert (returned.reply_code, returned.reply_text, returned.routing_key) == (
        312,
        "NO_ROUTE",
        "nobody",
    )


def test_manual_acks_and_prefetch_bound_what_a_consumer_holds(broker: MemoryBroker) -> None:
    channels: list[AmqpChannel] = []

    def declare(channel: AmqpChannel, peer: Peer) -> None:
        channels.append(channel)
        topology(channel)
        channel.basic_qos(prefetch_count=2)
        channel.queue_declare("work")
        channel.queue_bind("work", "x", routing_key="work")
        channel.basic_consume("work", peer.on_message)

    worker = Peer(broker, declare)
    for n in range(4):
        worker.publish("x", "work", b"%d" % n)
    assert [d[3] for d in worker.received] == [b"0", b"1"]  # the prefetch is full
    assert broker.queues()["work"] == 2
    worker.transport.call_soon(lambda: channels[-1].basic_ack(1))
    assert [d[3] for d in worker.received] == [b"0", b"1", b"2"]
    worker.transport.call_soon(lambda: channels[-1].basic_ack(3, multiple=True))
    assert [d[3] for d in worker.received] == [b"0", b"1", b"2", b"3"]
    # a lost connection redelivers what was not acked, on the new channel
    worker.transport.drop_connection()
    assert len(worker.disconnects) == 1
    assert worker.received[-1] == ("work", 1, True, b"3")
    assert worker.transport.generation == 2


def test_a_cancelled_consumer_gets_nothing_more(broker: MemoryBroker) -> None:
    tags: list[str] = []
    channels: list[AmqpChannel] = []

    def declare(channel: AmqpChannel, peer: Peer) -> None:
        topology(channel)
        channels.append(channel)
        channel.queue_declare("q")
        channel.queue_bind("q", "x", routing_key="q")
        tags.append(channel.basic_consume("q", peer.on_message, auto_ack=True))

    peer = Peer(broker, declare)
    peer.publish("x", "q", b"1")
    assert broker.consumers("q") == 1
    peer.transport.call_soon(lambda: channels[0].basic_cancel(tags[0]))
    peer.publish("x", "q", b"2")
    assert [d[3] for d in peer.received] == [b"1"]
    assert broker.consumers("q") == 0
    assert broker.queues()["q"] == 1  # waits for a consumer


def test_an_exclusive_queue_belongs_to_its_connection(broker: MemoryBroker) -> None:
    def owner(channel: AmqpChannel, peer: Peer) -> None:
        topology(channel)
        channel.queue_declare("reply", exclusive=True, auto_delete=True)
        channel.queue_bind("reply", "x", routing_key="reply")
        channel.basic_consume("reply", peer.on_message, auto_ack=True)

    def intruder(channel: AmqpChannel, peer: Peer) -> None:
        channel.basic_consume("reply", peer.on_message, auto_ack=True)

    first = Peer(broker, owner)
    other = Peer(broker, intruder)
    wait_for(lambda: other.errors, timeout=5)  # 405 RESOURCE_LOCKED, then it reconnects
    assert getattr(other.errors[0], "reply_code", None) == 405
    other.transport.stop()
    first.transport.stop()
    assert "reply" not in broker.queues()
    assert broker.bindings("x") == set()


def test_a_redeclaration_with_other_arguments_is_a_channel_error(broker: MemoryBroker) -> None:
    def legacy(channel: AmqpChannel, peer: Peer) -> None:
        channel.queue_declare("svc", durable=False)

    def durable(channel: AmqpChannel, peer: Peer) -> None:
        channel.queue_declare("svc", durable=True)

    Peer(broker, legacy)
    other = Peer(broker, durable)
    wait_for(lambda: other.errors, timeout=5)
    assert getattr(other.errors[0], "reply_code", None) == 406
    assert "queue 'svc'" in str(getattr(other.errors[0], "reply_text", ""))


# -- a Client over the broker ----------------------------------------------------------------


def echo_service(broker: MemoryBroker) -> Peer:
    """A stand-in node answering ``calc`` requests with their own body."""

    def declare(channel: AmqpChannel, peer: Peer) -> None:
        topology(channel)
        channel.queue_declare("x_service_calc")
        channel.queue_bind("x_service_calc", "x", routing_key="x_service_calc")
        channel.basic_consume("x_service_calc", answer, auto_ack=True)

    def answer(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        reply = Envelope(
            body=b'[null, "pong"]', content_type="json", correlation_id=properties.correlation_id
        )
        service.transport.submit(Outgoing(reply, "x", properties.reply_to))

    service = Peer(broker, declare)
    return service


def test_a_client_calls_through_the_broker(broker: MemoryBroker) -> None:
    echo_service(broker)
    from isc.core import JSONCodec

    with Client(exchange="x", codec=JSONCodec(), transport=broker.transport) as client:
        assert client.wait_connected(0)
        assert client.calc.ping() == "pong"
        future = client.calc.ping.call_async()
        assert future.wait(0)  # answered on this thread: the loops were idle
        assert future.value == "pong"
        assert client.pending_calls == 0
        with pytest.raises(ServiceNotFoundError, match=r"AMQP 312 NO_ROUTE"):
            client.users.get_user(1)
        # the caller's reply queue is exclusive, and goes with its connection
        assert sum(name.startswith("response-") for name in broker.queues()) == 1
    assert not any(name.startswith("response-") for name in broker.queues())


def test_a_call_nobody_answers_times_out(broker: MemoryBroker) -> None:
    def silent(channel: AmqpChannel, peer: Peer) -> None:
        topology(channel)
        channel.queue_declare("x_service_calc")
        channel.queue_bind("x_service_calc", "x", routing_key="x_service_calc")

    Peer(broker, silent)
    with Client(exchange="x", transport=broker.transport) as client:
        with pytest.raises(TimeoutException, match=r"no reply from calc.ping within 0.2s"):
            client.calc.ping.with_timeout(0.2)()
        future = client.calc.ping.with_timeout(0.2).call_async()
        with pytest.raises(TimeoutException):  # the transport's timer expires it
            future.result(5)
        assert client.pending_calls == 0
