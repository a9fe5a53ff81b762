"""isc's own AMQP frame codec against pika's: the same bytes out, the same objects in."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterator
from typing import Any

import pika
import pika.channel
import pika.frame
import pika.spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pika.adapters.select_connection import IOLoop

from isc.client import _frames
from isc.client._fastpath import _BatchingConnection, _FastChannel
from isc.client._frames import (
    INCOMPLETE,
    NOT_FAST,
    Delivery,
    ack_frame,
    decode_properties,
    encode_properties,
    parse_delivery,
    publish_frames,
)

#: pika 1.3 wrote 64-bit integers with type code "L"; isc, like pika 1.4 and later, writes the
#: "l" RabbitMQ documents for signed 64-bit values. Byte comparisons with an older pika stay
#: within 32 bits, and test_64_bit_integer_headers_are_signed_longs covers the rest.
PIKA_WRITES_L = tuple(int(n) for n in pika.__version__.split(".")[:2]) >= (1, 4)
INT_BITS = 63 if PIKA_WRITES_L else 31

shortstr = st.text(max_size=40)
header_value = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**INT_BITS), max_value=2**INT_BITS - 1),
    st.booleans(),
    st.binary(max_size=10),
    st.none(),
    st.just(decimal.Decimal("1.25")),
    st.just(datetime.datetime(2026, 12, 2, 14, 0)),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(min_value=0, max_value=9), max_size=2),
)
headers = st.none() | st.dictionaries(st.text(max_size=20), header_value, max_size=5)
isc_properties = st.fixed_dictionaries(
    {},
    optional={
        "content_type": shortstr,
        "content_encoding": shortstr,
        "headers": headers,
        "correlation_id": shortstr,
        "reply_to": shortstr,
        "expiration": st.integers(min_value=1, max_value=10**9).map(str),
        "delivery_mode": st.sampled_from([1, 2]),
    },
)
all_properties = isc_properties.flatmap(
    lambda isc: st.fixed_dictionaries(
        {},
        optional={
            "delivery_mode": st.sampled_from([1, 2]),
            "priority": st.integers(min_value=0, max_value=9),
            "message_id": shortstr,
            "timestamp": st.integers(min_value=0, max_value=2**40),
            "type": shortstr,
            "user_id": shortstr,
            "app_id": shortstr,
            "cluster_id": shortstr,
        },
    ).map(lambda others: {**isc, **others})
)


def pika_properties(**fields: Any) -> bytes:
    return b"".join(pika.BasicProperties(**fields).encode())


def deliver_message(
    channel: int,
    body: bytes,
    properties: pika.spec.BasicProperties | None = None,
    *,
    tag: int = 7,
    consumer_tag: str = "ctag",
    frame_max: int = 131072,
) -> bytes:
    """A Basic.Deliver message as the broker sends it, marshalled by pika."""
    method = pika.spec.Basic.Deliver(consumer_tag, tag, tag % 2 == 0, "isc", "isc_service_x")
    properties = properties or pika.BasicProperties(correlation_id=f"c{tag}", headers={"a": 1})
    frames = [
        pika.frame.Method(channel, method).marshal(),
        pika.frame.Header(channel, len(body), properties).marshal(),
    ]
    step = frame_max - 8
    frames += [
        pika.frame.Body(channel, body[i : i + step]).marshal() for i in range(0, len(body), step)
    ]
    return b"".join(frames)


# -- encoding -------------------------------------------------------------------------------


@settings(max_examples=3 * settings.default.max_examples)
@given(isc_properties)
def test_properties_are_encoded_as_pika_encodes_them(fields: dict[str, Any]) -> None:
    assert encode_properties(**fields) == pika_properties(**fields)


def test_integer_headers_take_the_smallest_type_pika_takes() -> None:
    for value in (0, 2**31 - 1, -(2**31)):
        assert encode_properties(headers={"n": value}) == pika_properties(headers={"n": value})


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**62, -(2**63)])
def test_64_bit_integer_headers_are_signed_longs(value: int) -> None:
    encoded = encode_properties(headers={"n": value})
    assert encoded[2 + 4 + 2 : 2 + 4 + 3] == b"l"  # flags, table size, key "n": the type code
    assert decode_properties(encoded).headers == {"n": value}
    if PIKA_WRITES_L:  # pika 1.3 also read "l" as unsigned: only 1.4's agrees below zero
        assert encoded == pika_properties(headers={"n": value})
        assert pika.BasicProperties().decode(encoded).headers == {"n": value}


def test_a_short_string_over_255_bytes_is_refused_as_pika_refuses_it() -> None:
    with pytest.raises(pika.exceptions.ShortStringTooLong):
        encode_properties(correlation_id="é" * 128)


@pytest.mark.parametrize("size", [0, 1, 99, 120, 121, 250, 360, 361])
@pytest.mark.parametrize("mandatory", [False, True])
def test_publish_frames_are_the_frames_pika_sends(size: int, mandatory: bool) -> None:
    body = bytes(range(256)) * 2
    body = body[:size]
    properties = {"content_type": "application/json", "headers": {"x-isc-version": 2}}
    frame_max = 128  # bodies of 120 bytes a frame: one, two and four body frames
    expected = [
        pika.frame.Method(
            3, pika.spec.Basic.Publish(exchange="isc", routing_key="k", mandatory=mandatory)
        ).marshal(),
        pika.frame.Header(3, size, pika.BasicProperties(**properties)).marshal(),
    ]
    expected += [pika.frame.Body(3, body[i : i + 120]).marshal() for i in range(0, size, 120)]
    encoded = publish_frames(
        3,
        "isc",
        "k",
        body,
        encode_properties(**properties),
        mandatory=mandatory,
        max_body_frame=frame_max - 8,
    )
    assert encoded == b"".join(expected)


@pytest.mark.parametrize("multiple", [False, True])
def test_ack_frames_are_the_frames_pika_sends(multiple: bool) -> None:
    expected = pika.frame.Method(5, pika.spec.Basic.Ack(2**40 + 3, multiple)).marshal()
    assert ack_frame(5, 2**40 + 3, multiple) == expected


# -- decoding -------------------------------------------------------------------------------


@settings(max_examples=3 * settings.default.max_examples)
@given(all_properties)
def test_properties_decode_as_pika_decodes_them(fields: dict[str, Any]) -> None:
    encoded = pika_properties(**fields)
    ours = decode_properties(b"xyz" + encoded, 3)
    theirs = pika.BasicProperties().decode(encoded)
    assert type(ours) is pika.spec.BasicProperties
    assert vars(ours) == vars(theirs)


def test_a_deliver_message_is_read_whole() -> None:
    data = b"junk" + deliver_message(2, b'{"a": 1}') + b"more"
    found = parse_delivery(data, 4)
    assert isinstance(found, Delivery)
    assert (found.channel, found.body, found.frames) == (2, b'{"a": 1}', 3)
    assert found.end == len(data) - 4
    assert vars(found.method) == vars(
        pika.spec.Basic.Deliver("ctag", 7, False, "isc", "isc_service_x")
    )
    assert found.properties.correlation_id == "c7"
    assert found.properties.headers == {"a": 1}


def test_an_empty_body_has_no_body_frame() -> None:
    data = deliver_message(1, b"")
    found = parse_delivery(data, 0)
    assert isinstance(found, Delivery)
    assert (found.body, found.frames, found.end) == (b"", 2, len(data))


def test_a_body_over_several_frames_is_joined() -> None:
    body = bytes(range(256)) * 3
    data = deliver_message(1, body, frame_max=108)
    found = parse_delivery(data, 0)
    assert isinstance(found, Delivery)
    assert found.body == body
    assert found.frames == 2 + 8


def test_every_prefix_of_a_message_is_incomplete() -> None:
    data = deliver_message(1, b"x" * 300, frame_max=108)
    for end in range(len(data)):
        assert parse_delivery(data[:end], 0) == INCOMPLETE, end


@pytest.mark.parametrize(
    "data",
    [
        pika.frame.Heartbeat().marshal(),
        pika.frame.Method(1, pika.spec.Basic.Ack(1)).marshal(),
        pika.frame.Method(
            1, pika.spec.Basic.Return(312, "NO_ROUTE", "isc", "isc_service_x")
        ).marshal()
        + pika.frame.Header(1, 1, pika.BasicProperties()).marshal()
        + pika.frame.Body(1, b"x").marshal(),
        # the header of another channel's message between this one's method and header
        pika.frame.Method(1, pika.spec.Basic.Deliver("c", 1, False, "", "q")).marshal()
        + pika.frame.Header(2, 1, pika.BasicProperties()).marshal(),
        # a bad frame end: pika reports it
        deliver_message(1, b"body")[:-1] + b"\x00",
        # a body longer than its header says: pika reports it
        pika.frame.Method(1, pika.spec.Basic.Deliver("c", 1, False, "", "q")).marshal()
        + pika.frame.Header(1, 1, pika.BasicProperties()).marshal()
        + pika.frame.Body(1, b"xx").marshal(),
        # too big to wait for whole
        deliver_message(1, b"x" * (_frames.MAX_FAST_BODY + 1)),
    ],
    ids=["heartbeat", "ack", "return", "interleaved", "bad-end", "long-body", "big"],
)
def test_what_is_not_a_plain_delivery_is_left_to_pika(data: bytes) -> None:
    assert parse_delivery(data, 0) == NOT_FAST


# -- the connection's reader against pika's own -----------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def __call__(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        assert isinstance(method, pika.spec.Basic.Deliver)
        self.seen.append((channel.channel_number, vars(method), vars(properties), body))


_IOLOOP: list[IOLoop] = []


@pytest.fixture(autouse=True, scope="module")
def _one_ioloop() -> Iterator[None]:
    """Connections that never connect still want a loop: one for the module, then closed."""
    _IOLOOP.append(IOLoop())
    yield
    _IOLOOP.pop().close()


def open_connection(cls: type[pika.SelectConnection]) -> tuple[pika.SelectConnection, Recorder]:
    """A connection object in the open state with two open channels consuming, no socket."""
    connection = cls(
        pika.ConnectionParameters(), internal_connection_workflow=False, custom_ioloop=_IOLOOP[0]
    )
    connection._set_connection_state(connection.CONNECTION_OPEN)
    recorder = Recorder()
    for number in (1, 2):
        channel = connection._create_channel(number, None)
        channel._set_state(channel.OPEN)
        channel._consumers["ctag"] = recorder
        connection._channels[number] = channel
    return connection, recorder


def test_the_connection_opens_fast_channels() -> None:
    connection, _ = open_connection(_BatchingConnection)
    assert isinstance(connection._channels[1], _FastChannel)


stream_parts = st.lists(
    st.tuples(
        st.sampled_from(["deliver1", "deliver2", "big", "heartbeat", "empty", "multi"]),
        st.integers(min_value=1, max_value=10**6),
    ),
    min_size=1,
    max_size=12,
)


def build_stream(parts: list[tuple[str, int]]) -> bytes:
    out = []
    for kind, tag in parts:
        if kind == "heartbeat":
            out.append(pika.frame.Heartbeat().marshal())
        elif kind == "big":
            out.append(deliver_message(1, b"b" * (_frames.MAX_FAST_BODY + 10), tag=tag))
        elif kind == "empty":
            out.append(deliver_message(2, b"", tag=tag))
        elif kind == "multi":
            out.append(deliver_message(1, b"m" * 3000, tag=tag, frame_max=1000))
        else:
            out.append(deliver_message(int(kind[-1]), str(tag).encode(), tag=tag))
    return b"".join(out)


@settings(deadline=None)
@given(stream_parts, st.lists(st.integers(min_value=1, max_value=5000), max_size=20))
def test_the_reader_delivers_what_pika_delivers_however_the_stream_is_cut(
    parts: list[tuple[str, int]], cuts: list[int]
) -> None:
    stream = build_stream(parts)
    ours, ours_seen = open_connection(_BatchingConnection)
    theirs, theirs_seen = open_connection(pika.SelectConnection)
    positions = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    for start, end in zip(positions, positions[1:]):
        ours._on_data_available(stream[start:end])
        theirs._on_data_available(stream[start:end])
    assert ours_seen.seen == theirs_seen.seen
    assert len(ours_seen.seen) == sum(kind != "heartbeat" for kind, _ in parts)
    assert ours._frame_buffer == theirs._frame_buffer == b""
    assert ours.bytes_received == theirs.bytes_received == len(stream)
    assert ours.frames_received == theirs.frames_received


def test_a_cancelled_consumer_gets_nothing_and_pika_rejects_the_message() -> None:
    connection, recorder = open_connection(_BatchingConnection)
    channel = connection._channels[1]
    channel._cancelled.add("ctag")
    rejected: list[int] = []
    channel.basic_reject = lambda tag, requeue=True: rejected.append(tag)  # type: ignore[method-assign]
    connection._on_data_available(deliver_message(1, b"late", tag=9))
    assert recorder.seen == []
    assert rejected == [9]  # pika's own handling of a delivery for a cancelled consumer


def test_a_connection_that_is_not_open_reads_through_pika() -> None:
    connection, recorder = open_connection(_BatchingConnection)
    connection._set_connection_state(connection.CONNECTION_CLOSING)
    connection._on_data_available(deliver_message(1, b"x"))
    assert len(recorder.seen) == 1  # pika's path delivered it
    assert connection.frames_received == 3


def test_plain_deliveries_skip_pikas_frame_by_frame_dispatch() -> None:
    connection, recorder = open_connection(_BatchingConnection)
    through_pika: list[object] = []
    connection._process_frame = through_pika.append  # type: ignore[method-assign]
    connection._on_data_available(
        deliver_message(1, b"a") + pika.frame.Heartbeat().marshal() + deliver_message(2, b"b")
    )
    assert [body for *_, body in recorder.seen] == [b"a", b"b"]
    assert [type(f) for f in through_pika] == [pika.frame.Heartbeat]
