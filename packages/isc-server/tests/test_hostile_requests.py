"""A request or notification whose AMQP properties could not be decoded (no broker).

The connection's reader delivers such a message with ``UndecodableProperties`` (see
isc-client's test_hostile_frames.py); the node answers the request with an error when it can,
acks it, counts it, and drops the notification, without running anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika.spec
import pytest

from isc.client.internal import Outgoing, UndecodableProperties
from isc.core import Envelope, JSONCodec, Reply, Request
from isc.server import Node, expose, on


class Calc:
    name = "calc"

    def __init__(self) -> None:
        self.calls = 0
        self.events: list[Any] = []

    @expose
    def add(self, a: int, b: int) -> int:
        self.calls += 1
        return a + b

    @on("hello")
    def hello(self, who: Any) -> None:
        self.events.append(who)


class FakeChannel:
    def __init__(self) -> None:
        self.acks: list[tuple[int, bool]] = []

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))


class FakeWorker:
    """What the node uses of its AmqpWorker here: submit publishes at once, call_soon runs."""

    def __init__(self) -> None:
        self.generation = 1
        self.channel = FakeChannel()
        self.published: list[Outgoing] = []

    def submit(self, item: Outgoing, *, batch: bool = False) -> None:
        self.published.append(item)
        if item.on_published is not None:
            item.on_published()

    def call_soon(self, callback: Callable[[], None]) -> None:
        callback()


class Deliver:
    def __init__(self, tag: int) -> None:
        self.delivery_tag = tag
        self.routing_key = "isc_service_calc"


def running_node() -> tuple[Node, Calc, FakeWorker]:
    node = Node()
    calc = Calc()
    node.register_service(calc)
    node._listeners = node._services.listeners()
    worker = FakeWorker()
    node._worker = worker  # type: ignore[assignment]
    node._pool.spawn = lambda fn, *args: fn(*args)  # type: ignore[method-assign]  # run inline
    return node, calc, worker


def undecodable(**fields: Any) -> UndecodableProperties:
    properties = UndecodableProperties(**fields)
    properties.headers = {}
    properties.isc_error = "the headers table could not be decoded (OverflowError: too big)"
    return properties


BODY = Request("add", (1, 2)).encode(JSONCodec()).body


def reply_of(item: Outgoing) -> Reply:
    envelope = item.envelope
    return Reply.decode(
        Envelope(envelope.body, envelope.content_type, headers=envelope.headers), JSONCodec()
    )


def test_a_request_with_undecodable_headers_gets_an_error_reply_and_is_acked() -> None:
    node, calc, worker = running_node()
    properties = undecodable(content_type="json", correlation_id="c1", reply_to="rq")
    node._on_request(None, Deliver(5), properties, BODY)  # type: ignore[arg-type]
    node._flush_acks()
    assert calc.calls == 0
    [item] = worker.published
    assert (item.key, item.envelope.correlation_id) == ("rq", "c1")
    reply = reply_of(item)
    assert reply.error is not None
    assert "AMQP headers could not be decoded" in reply.error
    assert "OverflowError" in reply.error
    assert worker.channel.acks == [(5, True)]
    assert node.metrics.counters["bad_requests"] == 1


def test_without_reply_to_it_is_acked_and_counted() -> None:
    node, calc, worker = running_node()
    node._on_request(None, Deliver(6), undecodable(content_type="json"), BODY)  # type: ignore[arg-type]
    assert calc.calls == 0
    assert worker.published == []
    assert worker.channel.acks == [(6, True)]
    assert node.metrics.counters["bad_requests"] == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"content_type": b"\xffjson", "correlation_id": "c1", "reply_to": "rq"},
        {"content_type": "json", "correlation_id": b"\xff", "reply_to": "rq"},
        {"content_type": "json", "correlation_id": "c1", "reply_to": b"\xffq"},
    ],
    ids=["content-type", "correlation-id", "reply-to"],
)
def test_short_strings_that_are_not_utf8_never_make_the_node_raise(
    fields: dict[str, Any],
) -> None:
    node, _calc, worker = running_node()
    properties = pika.spec.BasicProperties(**fields)  # as pika and isc decode them: bytes
    node._on_request(None, Deliver(7), properties, BODY)  # type: ignore[arg-type]
    node._flush_acks()
    assert worker.channel.acks == [(7, True)]
    if isinstance(fields["reply_to"], bytes):  # no queue has that name: no reply
        assert worker.published == []
        assert node.metrics.counters["bad_requests"] == 1
    else:
        [item] = worker.published
        assert item.envelope.correlation_id == fields["correlation_id"]


def test_a_notification_with_undecodable_headers_is_dropped_and_counted() -> None:
    node, calc, _worker = running_node()
    body = JSONCodec().encode(["hello", "world"])
    node._on_broadcast(None, None, undecodable(content_type="json", correlation_id="n1"), body)  # type: ignore[arg-type]
    assert calc.events == []
    assert node.metrics.counters["bad_notifications"] == 1
    node._on_broadcast(None, None, pika.spec.BasicProperties(content_type=b"\xff"), body)  # type: ignore[arg-type]
    assert node.metrics.counters["bad_notifications"] == 2
    node._on_broadcast(None, None, pika.spec.BasicProperties(content_type="json"), body)  # type: ignore[arg-type]
    assert node._listener_pool.join(10)  # listeners run in greenlets of their own
    assert calc.events == ["world"]
