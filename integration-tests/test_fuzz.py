"""Bad input straight onto a node's queues: it answers what it can, logs the rest, keeps serving.

Hypothesis builds batches of broken messages — random bytes, truncated and oversized payloads,
wrong shapes, unknown content types, missing ``reply_to`` / ``correlation_id``, enormous
argument lists — and publishes them with plain pika onto a service queue and the fanout
exchange, while a client keeps making correct calls.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import isc.codecs
from isc.client import Client
from isc.core import AbstractCodec, Envelope, JSONCodec, Reply, Request
from isc.core.naming import fanout_exchange_name, service_queue_name
from isc_testing import wait_for
from isc_testing.nodes import NodeProcess

pytestmark = pytest.mark.fault

MAX_MESSAGE_SIZE = 65_536
CONTENT_TYPES = ["", "json", "typedjson", "msgpack", "pickle", "application/x-unknown"]


@dataclass
class BadMessage:
    """One broken message and where it goes."""

    body: bytes
    content_type: str
    correlation_id: str | None
    wants_reply: bool
    to_fanout: bool


def _is_request_shape(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], list)
        and isinstance(value[2], dict)
    )


def bodies(codec: AbstractCodec) -> st.SearchStrategy[bytes]:
    """Payloads no node may execute, in the codec under test and beyond."""
    valid = codec.encode(["add", [1, 2], {}])
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=10,
    )
    return st.one_of(
        st.binary(max_size=2000),
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),
        json_values.filter(lambda v: not _is_request_shape(v)).map(codec.encode),
        st.integers(1, 5000).map(lambda n: b"\x00" * (MAX_MESSAGE_SIZE + n)),
        st.integers(5000, 8000).map(
            lambda n: Request("add", tuple(range(n)), {}).encode(codec).body
        ),
    )


def bad_messages(codec: AbstractCodec) -> st.SearchStrategy[BadMessage]:
    """A broken message with a random content type, ids and destination."""
    return st.builds(
        BadMessage,
        body=bodies(codec),
        content_type=st.sampled_from([codec.content_type] * 4 + CONTENT_TYPES),
        correlation_id=st.none() | st.uuids().map(str),
        wants_reply=st.booleans(),
        to_fanout=st.booleans(),
    )


class Publisher:
    """Plain pika: publishes raw messages and collects the replies by correlation id."""

    def __init__(self, url: str, exchange: str) -> None:
        self.exchange = exchange
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.reply_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.reply_queue, exchange, routing_key=self.reply_queue)
        self.replies: dict[str, Reply] = {}

    def publish(self, message: BadMessage) -> None:
        exchange, key = (
            (fanout_exchange_name(self.exchange), "")
            if message.to_fanout
            else (self.exchange, service_queue_name(self.exchange, "calc"))
        )
        properties = pika.BasicProperties(
            content_type=message.content_type or None,
            correlation_id=message.correlation_id,
            reply_to=self.reply_queue if message.wants_reply else None,
        )
        self.channel.basic_publish(exchange, key, message.body, properties)

    def collect(self) -> dict[str, Reply]:
        while True:
            method, props, body = self.channel.basic_get(self.reply_queue, auto_ack=True)
            if method is None:
                return self.replies
            codec = isc.codecs.get_codec(props.content_type)
            envelope = Envelope(body, props.content_type, headers=props.headers or {})
            self.replies[props.correlation_id or ""] = Reply.decode(envelope, codec)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def fuzz_node(amqp_url: str, exchange: str, codec: AbstractCodec) -> Iterator[NodeProcess]:
    # Pickle stays refused here: random bytes labelled "pickle" must get the refusal.
    extra = ["--max-message-size", str(MAX_MESSAGE_SIZE)]
    with NodeProcess.serve(amqp_url, exchange, "calc:Calc", extra=extra) as node:
        yield node


@pytest.fixture
def publisher(amqp_url: str, exchange: str, fuzz_node: NodeProcess) -> Iterator[Publisher]:
    pub = Publisher(amqp_url, exchange)
    yield pub
    pub.close()


def test_bad_messages_never_stop_a_node(
    amqp_url: str,
    exchange: str,
    codec: AbstractCodec,
    fuzz_node: NodeProcess,
    publisher: Publisher,
) -> None:
    safe_codec = JSONCodec() if codec.content_type == "pickle" else codec
    client = Client(amqp_url, exchange=exchange, codec=safe_codec, invoke_timeout=10)
    stop = threading.Event()
    answered: list[int] = []
    failures: list[BaseException] = []

    def keep_calling() -> None:
        while not stop.is_set():
            try:
                answered.append(client.calc.add(len(answered), 1))
            except BaseException as exc:  # reported below
                failures.append(exc)
                return

    caller = threading.Thread(target=keep_calling, daemon=True)
    caller.start()
    sent = {"requests": 0}

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(batch=st.lists(bad_messages(codec), min_size=1, max_size=15))
    def check(batch: list[BadMessage]) -> None:
        for message in batch:
            if message.correlation_id is not None:
                message.correlation_id = f"{message.correlation_id}-{uuid.uuid4().hex[:6]}"
            publisher.publish(message)
        sent["requests"] += sum(1 for m in batch if not m.to_fanout)
        expected = {
            m.correlation_id
            for m in batch
            if m.wants_reply and m.correlation_id is not None and not m.to_fanout
        }
        wait_for(
            lambda: expected <= publisher.collect().keys(),
            timeout=20,
            message=f"error replies to {sorted(expected)}",
        )
        replies = publisher.replies
        for cid in expected:
            assert replies[cid].error, f"{cid}: a bad request must get an error reply"
        assert client.calc.add(1, 2) == 3  # still serving

    try:
        check()
        stop.set()
        caller.join(15)
        assert not failures, f"a correct call failed meanwhile: {failures[0]!r}"
        assert answered, "the concurrent caller made no call"
        markers = ("bad request for calc", "refused calc.", "refused pickle for calc")

        def logged() -> int:
            lines = fuzz_node.output.splitlines()
            return sum(1 for line in lines if any(m in line for m in markers))

        # Requests without a reply_to give no reply to wait for: wait for their log lines.
        wait_for(
            lambda: logged() >= sent["requests"],
            timeout=10,
            message=f"a log line for each of the {sent['requests']} bad requests",
        )
        assert "Traceback" not in fuzz_node.output
    finally:
        stop.set()
        client.stop()
