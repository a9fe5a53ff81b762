"""Every byte from the wire is hostile: AMQP headers no decoder can turn into Python.

A timestamp past ``datetime``'s range, tables or arrays nested thousands deep: RabbitMQ
relays such header values verbatim, and pika's decoder raises on them. Before isc read them
safely, one such request aborted the node's connection, came back on every reconnect and
failed every call until someone purged the queue; as a notification it disconnected every
node; on a client's reply queue it failed every pending call.

These tests publish hand-made content headers (``isc_testing.hostile``) onto a service queue,
the fanout exchange and a client's reply queue, with the node or the client connected through
a TCP proxy that counts connections: none may reconnect.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pika.spec
import pytest

import isc.codecs
from isc.client import Client, RemoteException
from isc.client.internal import fastpath_requested
from isc.core import DecodeError, Envelope, JSONCodec, Reply
from isc.core.naming import fanout_exchange_name, service_queue_name
from isc_testing import TcpProxy, wait_for
from isc_testing.hostile import HOSTILE_HEADER_VALUES, hostile_properties
from isc_testing.nodes import NodeProcess

pytestmark = [
    pytest.mark.codec_independent,
    # The salvage of undecodable headers is the fast path's (isc's frame reader): on stock
    # pika, pika's decoder raises and pika closes the connection (docs/reliability.md).
    pytest.mark.skipif(
        not fastpath_requested(None), reason="stock pika (ISC_PIKA_FASTPATH=0): pika decodes"
    ),
]

JSON = JSONCodec()


class RawPeer:
    """Plain pika: publishes hand-made messages, reads replies and requests with basic_get."""

    def __init__(self, url: str, exchange: str) -> None:
        self.exchange = exchange
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, "direct", durable=False, auto_delete=False)
        self.reply_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.reply_queue, exchange, routing_key=self.reply_queue)
        #: every reply received, in order: (correlation id, reply)
        self.replies: list[tuple[str, Reply]] = []

    def publish(
        self, exchange: str, key: str, body: bytes, properties: pika.BasicProperties
    ) -> None:
        self.channel.basic_publish(exchange, key, body, properties)

    def get_all(self, queue: str) -> list[tuple[pika.spec.BasicProperties, bytes]]:
        """Every message waiting in ``queue`` (acked)."""
        got = []
        while True:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((properties, body))

    def replied(self) -> dict[str, Reply]:
        """The replies received so far, by correlation id."""
        for properties, body in self.get_all(self.reply_queue):
            codec = isc.codecs.get_codec(properties.content_type)
            envelope = Envelope(body, properties.content_type, headers=properties.headers or {})
            self.replies.append((properties.correlation_id or "", Reply.decode(envelope, codec)))
        return dict(self.replies)

    def waiting_in(self, queue: str) -> int:
        """How many messages wait in ``queue`` (not counting unacked ones)."""
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def node(tcp_proxy: TcpProxy, exchange: str) -> Iterator[NodeProcess]:
    """A node of calc and events, connected through ``tcp_proxy``."""
    assert tcp_proxy.url is not None
    with NodeProcess.serve(tcp_proxy.url, exchange, "calc:Calc", "calc:QuietEvents") as node:
        yield node


@pytest.fixture
def peer(amqp_url: str, exchange: str) -> Iterator[RawPeer]:
    raw = RawPeer(amqp_url, exchange)
    yield raw
    raw.close()


@pytest.fixture
def client(amqp_url: str, exchange: str) -> Iterator[Client]:
    with Client(amqp_url, exchange=exchange, codec=JSON, invoke_timeout=10) as client:
        yield client


def dropped(client: Client, counter: str) -> int:
    """A node-wide drop counter of the node serving calc (``_inspect``)."""
    return int(client.calc._inspect()["metrics"]["dropped"][counter])


#: The events service's timer fails every other tick on purpose (services/calc.py), 0.2 s
#: after the node starts: its logged traceback is expected, whatever the test's speed.
_DELIBERATE_TICK_FAILURE = re.compile(
    r"timer events\.tick failed; it keeps ticking\n"
    r"Traceback \(most recent call last\):\n(?: .*\n)*?"
    r"RuntimeError: a failing tick must not stop the timer\n?"
)


def assert_still_connected(node: NodeProcess, tcp_proxy: TcpProxy) -> None:
    assert tcp_proxy.accepted == 1, "the node reconnected"
    assert "lost its connection" not in node.output
    assert "Traceback" not in _DELIBERATE_TICK_FAILURE.sub("", node.output)


def test_hostile_requests_get_an_error_reply_and_cost_no_connection(
    tcp_proxy: TcpProxy, exchange: str, node: NodeProcess, peer: RawPeer, client: Client
) -> None:
    assert client.calc.add(1, 2) == 3
    queue = service_queue_name(exchange, "calc")
    body = JSON.encode(["add", [1, 2], {}])
    expected: dict[str, str] = {}  # correlation id -> what the error reply must say
    for name, value in HOSTILE_HEADER_VALUES.items():
        cid = f"{name}-{uuid.uuid4().hex[:8]}"
        expected[cid] = "AMQP headers could not be decoded"
        properties = hostile_properties(
            value, content_type="json", correlation_id=cid, reply_to=peer.reply_queue
        )
        peer.publish(exchange, queue, body, properties)
    # A content type that is not UTF-8: pika and isc keep it as bytes; no codec has that name.
    cid = f"bytes-content-type-{uuid.uuid4().hex[:8]}"
    expected[cid] = "no codec for content type"
    properties = hostile_properties(
        b"V", content_type=b"\xffjson", correlation_id=cid, reply_to=peer.reply_queue
    )
    peer.publish(exchange, queue, body, properties)
    # Nowhere to reply to: logged, counted, acked all the same.
    value = HOSTILE_HEADER_VALUES["timestamp-past-time-t"]
    peer.publish(exchange, queue, body, hostile_properties(value, content_type="json"))

    replies = wait_for(
        lambda: expected.keys() <= peer.replied().keys() and peer.replied(),
        timeout=15,
        message=f"error replies to {sorted(expected)}",
    )
    for cid, says in expected.items():
        error = replies[cid].to_exception()
        assert isinstance(error, RemoteException), cid
        assert says in str(error), (cid, str(error))
    assert replies[next(iter(expected))].error_type == "isc.core.errors.DecodeError"

    bad = len(expected) + 1
    wait_for(lambda: dropped(client, "bad_requests") == bad, message=f"{bad} bad requests")
    assert client.calc.add(2, 3) == 5  # still serving, on the same connection
    assert_still_connected(node, tcp_proxy)
    assert peer.waiting_in(queue) == 0
    # Nothing came back: each request was answered once and counted once.
    assert len(peer.replies) == len(expected)
    assert dropped(client, "bad_requests") == bad
    # One line each (the node's stderr is read by a thread of the test: it may lag a little).
    wait_for(
        lambda: sum("bad request for calc" in line for line in node.output.splitlines()) == bad,
        message=f"{bad} log lines",
    )


def test_hostile_notifications_are_dropped_and_cost_no_connection(
    tcp_proxy: TcpProxy, exchange: str, node: NodeProcess, peer: RawPeer, client: Client
) -> None:
    fanout = fanout_exchange_name(exchange)
    body = JSON.encode(["bang", "hostile"])
    for name, value in HOSTILE_HEADER_VALUES.items():
        properties = hostile_properties(value, content_type="json", correlation_id=name)
        peer.publish(fanout, "", body, properties)
    client.notify("bang", "after")
    wait_for(
        lambda: [["after"], {}] in client.events.get_received(),
        message="the notification sent after the hostile ones",
    )
    count = len(HOSTILE_HEADER_VALUES)
    wait_for(lambda: dropped(client, "bad_notifications") == count, message=f"{count} dropped")
    assert client.events.get_received() == [[["after"], {}]]  # no listener saw a hostile one
    assert_still_connected(node, tcp_proxy)
    lines = wait_for(
        lambda: [ln for ln in node.output.splitlines() if "bad notification dropped" in ln],
        message="the log lines",
    )
    wait_for(
        lambda: sum("bad notification dropped" in ln for ln in node.output.splitlines()) == count,
        message=f"{count} log lines",
    )
    assert all("AMQP headers could not be decoded" in line for line in lines)


def test_a_hostile_reply_fails_its_own_call_and_no_other(
    tcp_proxy: TcpProxy, exchange: str, peer: RawPeer
) -> None:
    """The service is the raw peer: it answers one call with a hostile reply."""
    queue = service_queue_name(exchange, "raw")
    peer.channel.queue_declare(queue, exclusive=True)
    peer.channel.queue_bind(queue, exchange, routing_key=queue)
    assert tcp_proxy.url is not None

    def requests(count: int) -> dict[str, tuple[pika.spec.BasicProperties, Any]]:
        got: dict[str, tuple[pika.spec.BasicProperties, Any]] = {}

        def arrived() -> bool:
            for properties, body in peer.get_all(queue):
                codec = isc.codecs.get_codec(properties.content_type)
                got[properties.correlation_id] = (properties, codec.decode(body))
            return len(got) >= count

        wait_for(arrived, message=f"{count} request(s)")
        return got

    def answer(properties: pika.spec.BasicProperties, result: Any) -> None:
        codec = isc.codecs.get_codec(properties.content_type)
        reply = Reply.success(properties.correlation_id, result).encode(codec)
        normal = pika.BasicProperties(
            content_type=reply.content_type,
            correlation_id=reply.correlation_id,
            headers=dict(reply.headers),
        )
        peer.publish(exchange, properties.reply_to, reply.body, normal)

    with Client(tcp_proxy.url, exchange=exchange, invoke_timeout=20) as client:
        hit = client.raw.add.call_async(1, 1)
        other = client.raw.add.call_async(2, 2)
        calls = requests(2)
        hit_request, _ = calls[hit.extra["correlation_id"]]
        other_request, _ = calls[other.extra["correlation_id"]]
        reply_to = hit_request.reply_to
        codec = isc.codecs.get_codec(hit_request.content_type)
        body = Reply.success(hit_request.correlation_id, 2).encode(codec).body
        value = HOSTILE_HEADER_VALUES["tables-3000-deep"]
        properties = hostile_properties(
            value, content_type=codec.content_type, correlation_id=hit_request.correlation_id
        )
        peer.publish(exchange, reply_to, body, properties)
        unknown = hostile_properties(value, content_type=codec.content_type, correlation_id="x")
        peer.publish(exchange, reply_to, body, unknown)  # no such call: dropped
        answer(other_request, 4)

        with pytest.raises(DecodeError, match="AMQP headers could not be decoded"):
            hit.result(10)
        assert other.result(10) == 4
        wait_for(lambda: client.stats["dropped_replies"] == 1, message="the unknown reply")

        later = client.raw.add.call_async(3, 3)
        [(later_request, _)] = requests(1).values()
        answer(later_request, 6)
        assert later.result(10) == 6
        assert tcp_proxy.accepted == 1, "the client reconnected"
        assert client.is_connected
