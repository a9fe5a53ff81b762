"""Every byte from the wire is hostile: no content header costs the connection (no broker).

RabbitMQ relays header tables of every AMQP 0-9-1 field kind verbatim (``t b B s u I i l f d D
S x A F T V``), with any value the field's width holds: timestamps past ``datetime``'s range,
floats that are not numbers, strings that are not UTF-8, tables nested thousands deep. pika's
decoder raises on some of them (``OverflowError``, ``RecursionError``, ``ValueError``, ...),
and an exception out of the connection's reader used to abort the connection, after which the
unacked message came back on every reconnect. These tests generate such content headers and
check that the reader hands the message to its consumer, marked, and goes on.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pika
import pika.channel
import pika.frame
import pika.spec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pika.adapters.select_connection import IOLoop

from isc.client import Client, _frames
from isc.client._fastpath import _BatchingConnection
from isc.client._frames import (
    INCOMPLETE,
    NOT_FAST,
    Delivery,
    UndecodableProperties,
    parse_delivery,
    salvage_header,
)
from isc.core import DecodeError, Reply, TypedJSONCodec

P = pika.spec.BasicProperties
#: What isc reads from every message, placed around the headers table.
SALVAGED = {"content_type": "json", "correlation_id": "cid-1", "reply_to": "reply-queue"}


# -- building hostile frames by hand (pika's encoder cannot write most of these) -------------


def shortstr(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


def longstr(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def table(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A field table from (key, encoded field value) pairs."""
    return longstr(b"".join(shortstr(key) + value for key, value in entries))


def array(values: list[bytes]) -> bytes:
    return longstr(b"".join(values))


def nested(depth: int, kind: str, leaf: bytes = b"V") -> bytes:
    """A field value: tables ('F') or arrays ('A') nested ``depth`` deep around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = b"F" + table([(b"k", value)]) if kind == "F" else b"A" + array([value])
    return value


def properties(headers: bytes, *, second_flag_word: bool = False) -> bytes:
    """Property bytes: content_type, the ``headers`` table bytes, correlation_id, reply_to
    (after an empty second flag word, which AMQP allows and isc never sends, if asked)."""
    flags = P.FLAG_CONTENT_TYPE | P.FLAG_HEADERS | P.FLAG_CORRELATION_ID | P.FLAG_REPLY_TO
    return (
        (struct.pack(">HH", flags | 1, 0) if second_flag_word else struct.pack(">H", flags))
        + shortstr(SALVAGED["content_type"].encode())
        + headers
        + shortstr(SALVAGED["correlation_id"].encode())
        + shortstr(SALVAGED["reply_to"].encode())
    )


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


def header_frame(channel: int, body_size: int, props: bytes) -> bytes:
    return frame(2, channel, struct.pack(">HHQ", 60, 0, body_size) + props)


def message(
    props: bytes, body: bytes = b"[]", *, channel: int = 1, tag: int = 7, frame_max: int = 131072
) -> bytes:
    """A whole Basic.Deliver message with hand-made property bytes."""
    method = pika.spec.Basic.Deliver("ctag", tag, False, "isc", "isc_service_x")
    step = frame_max - 8
    return (
        pika.frame.Method(channel, method).marshal()
        + header_frame(channel, len(body), props)
        + b"".join(frame(3, channel, body[i : i + step]) for i in range(0, len(body), step))
    )


def pika_decodes(props: bytes) -> tuple[bool, Any]:
    """Whether pika's own decoder reads these properties, and what it reads."""
    try:
        return True, vars(P().decode(props))
    except Exception as exc:  # whatever pika raises
        return False, exc


# -- field values of every kind -----------------------------------------------------------------

u64 = st.integers(0, 2**64 - 1)
raw_text = st.binary(max_size=20) | st.text(max_size=10).map(str.encode)
scalar_values = st.one_of(
    st.booleans().map(lambda b: b"t" + bytes([b])),
    st.integers(0, 255).map(lambda n: b"t" + bytes([n])),
    st.integers(-128, 127).map(lambda n: b"b" + struct.pack(">b", n)),
    st.integers(0, 255).map(lambda n: b"B" + bytes([n])),
    st.integers(-(2**15), 2**15 - 1).map(lambda n: b"s" + struct.pack(">h", n)),
    st.integers(-(2**15), 2**15 - 1).map(lambda n: b"U" + struct.pack(">h", n)),
    st.integers(0, 2**16 - 1).map(lambda n: b"u" + struct.pack(">H", n)),
    st.integers(-(2**31), 2**31 - 1).map(lambda n: b"I" + struct.pack(">i", n)),
    st.integers(0, 2**32 - 1).map(lambda n: b"i" + struct.pack(">I", n)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: b"l" + struct.pack(">q", n)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: b"L" + struct.pack(">q", n)),
    st.binary(min_size=4, max_size=4).map(lambda raw: b"f" + raw),  # NaN and infinities too
    st.binary(min_size=8, max_size=8).map(lambda raw: b"d" + raw),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0]).map(
        lambda x: b"d" + struct.pack(">d", x)
    ),
    st.tuples(st.integers(0, 255), st.integers(-(2**31), 2**31 - 1)).map(
        lambda d: b"D" + struct.pack(">Bi", *d)
    ),
    raw_text.map(lambda raw: b"S" + longstr(raw)),  # bad UTF-8 included
    st.binary(max_size=20).map(lambda raw: b"x" + longstr(raw)),
    u64.map(lambda n: b"T" + struct.pack(">Q", n)),  # past datetime's range
    st.sampled_from([2**63, 2**64 - 1, 253402300800]).map(lambda n: b"T" + struct.pack(">Q", n)),
    st.just(b"V"),
    # a kind AMQP does not define, and what follows it
    st.binary(min_size=1, max_size=1)
    .filter(lambda k: k not in b"tbBsUuIilLfdDSxATFV")
    .flatmap(lambda kind: st.binary(max_size=8).map(lambda rest: kind + rest)),
)
keys = st.binary(max_size=12) | st.text(max_size=8).map(str.encode)
field_values = st.recursive(
    scalar_values,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda vs: b"A" + array(vs))
        | st.lists(st.tuples(keys, inner), max_size=4).map(lambda es: b"F" + table(es))
    ),
    max_leaves=12,
)
#: Nesting either shallow enough for every decoder or far past any recursion limit (near the
#: limit, whether a decoder raises depends on how deep its caller's stack already is).
deep_values = st.tuples(
    st.integers(1, 40) | st.integers(2000, 6000), st.sampled_from(["F", "A"]), scalar_values
).map(lambda d: nested(*d))
header_tables = st.lists(st.tuples(keys, field_values | deep_values), max_size=6).map(table)


# -- parse_delivery never raises ------------------------------------------------------------


@settings(
    max_examples=4 * settings.default.max_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(header_tables)
def test_any_header_table_is_delivered_decoded_as_pika_decodes_it_or_marked(
    headers: bytes,
) -> None:
    props = properties(headers)
    data = b"junk" + message(props, b"body") + b"more"
    found = parse_delivery(data, 4)
    assert isinstance(found, Delivery)
    assert (found.body, found.end, found.frames) == (b"body", len(data) - 4, 3)
    decodable, theirs = pika_decodes(props)
    if decodable:
        assert type(found.properties) is P
        assert vars(found.properties) == theirs
    else:
        assert isinstance(found.properties, UndecodableProperties)
        assert found.properties.isc_error.startswith("the headers table could not be decoded")
        assert found.properties.headers == {}
        for name, value in SALVAGED.items():  # everything around the table survives
            assert getattr(found.properties, name) == value


@settings(
    max_examples=3 * settings.default.max_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(header_tables, st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_every_cut_of_a_hostile_message_is_incomplete(headers: bytes, cuts: list[int]) -> None:
    data = message(properties(headers), b"x" * 300, frame_max=108)
    for cut in cuts:
        assert parse_delivery(data[: cut % len(data)], 0) == INCOMPLETE


@settings(
    max_examples=5 * settings.default.max_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    header_tables,
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_corrupted_properties_in_whole_frames_are_delivered_marked_or_left_to_pika(
    headers: bytes, flips: list[tuple[int, int]]
) -> None:
    props = bytearray(properties(headers))
    for position, value in flips:
        props[position % len(props)] = value
    data = message(bytes(props), b"body")
    found = parse_delivery(data, 0)
    assert found == NOT_FAST or isinstance(found, Delivery)
    if isinstance(found, Delivery):
        assert found.body == b"body"
        ok, theirs = pika_decodes(bytes(props))
        if type(found.properties) is P:  # decoded: as pika decodes it
            assert ok
            assert vars(found.properties) == theirs
    else:  # unusual flags, or properties that do not fill their frame: pika's path, which
        # salvages the header when pika's decoder raises on it
        header = header_frame(1, 4, bytes(props))
        salvaged = salvage_header(header, ValueError("pika raised"))
        assert salvaged is not None
        assert isinstance(salvaged.properties, UndecodableProperties)


@settings(max_examples=5 * settings.default.max_examples, deadline=None)
@given(st.binary(max_size=400), st.binary(max_size=60))
def test_random_bytes_never_make_the_reader_raise(noise: bytes, props: bytes) -> None:
    parse_delivery(noise, 0)
    parse_delivery(message(props, b"b"), 0)  # a whole message whose properties are noise
    parse_delivery(message(props, b"b")[:-3] + noise, 0)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"T" + struct.pack(">Q", 2**64 - 1), "OverflowError"),
        (nested(3000, "F"), "RecursionError"),
        (nested(3000, "A"), "RecursionError"),
        (b"d" + struct.pack(">d", float("nan")), "ValueError"),
        (b"d" + struct.pack(">d", float("inf")), "OverflowError"),
        (b"Z\x00\x00", "InvalidFieldTypeException"),
    ],
    ids=["timestamp", "deep-tables", "deep-arrays", "nan", "inf", "unknown-kind"],
)
def test_what_pika_raises_on_is_delivered_with_the_reason(value: bytes, error: str) -> None:
    props = properties(table([(b"x-hostile", value)]))
    assert not pika_decodes(props)[0]
    found = parse_delivery(message(props), 0)
    assert isinstance(found, Delivery)
    assert isinstance(found.properties, UndecodableProperties)
    assert error in found.properties.isc_error
    assert (found.properties.correlation_id, found.properties.reply_to) == ("cid-1", "reply-queue")


def test_a_property_past_the_end_of_its_frame_is_marked_and_nothing_after_it_read() -> None:
    props = properties(table([(b"a", b"T" + struct.pack(">Q", 2**64 - 1))]))
    truncated = props[:-5]  # reply_to's short string now runs past the frame
    found = parse_delivery(message(truncated) + b"\x00" * 64, 0)
    assert isinstance(found, Delivery)
    assert isinstance(found.properties, UndecodableProperties)
    assert "reply_to" in found.properties.isc_error
    assert found.properties.correlation_id == "cid-1"
    assert found.properties.reply_to is None


def test_non_utf8_short_strings_stay_bytes_as_pika_keeps_them() -> None:
    flags = P.FLAG_CONTENT_TYPE | P.FLAG_CORRELATION_ID | P.FLAG_REPLY_TO
    props = struct.pack(">H", flags) + shortstr(b"\xffjson") + shortstr(b"\xc3(") + shortstr(b"q")
    found = parse_delivery(message(props), 0)
    assert isinstance(found, Delivery)
    assert type(found.properties) is P
    assert vars(found.properties) == pika_decodes(props)[1]
    assert found.properties.correlation_id == b"\xc3("


def test_salvage_header_refuses_what_is_not_a_basic_content_header() -> None:
    error = ValueError("x")
    good = header_frame(1, 0, properties(table([])))
    assert isinstance(salvage_header(good, error), pika.frame.Header)
    assert salvage_header(good[:-1] + b"\x00", error) is None  # bad frame end
    assert salvage_header(pika.frame.Heartbeat().marshal(), error) is None
    other_class = frame(2, 1, struct.pack(">HHQ", 50, 0, 0) + b"\x00\x00")
    assert salvage_header(other_class, error) is None
    assert salvage_header(b"\x02\x00", error) is None


# -- the connection's reader: both paths, and consumers that raise -----------------------------


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.seen: list[tuple[Any, Any, bytes]] = []
        self.fail = fail

    def __call__(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        self.seen.append((method, properties, body))
        if self.fail:
            raise RuntimeError("a consumer bug")


_IOLOOP: list[IOLoop] = []


@pytest.fixture(autouse=True, scope="module")
def _one_ioloop() -> Iterator[None]:
    _IOLOOP.append(IOLoop())
    yield
    _IOLOOP.pop().close()


def open_connection(
    consumer: Recorder, *, auto_ack: bool = True
) -> tuple[_BatchingConnection, list[tuple[int, bool]]]:
    """An open connection without a socket, channels 1 and 2 consuming with ``consumer``;
    and the (delivery tag, requeue) of every reject sent."""
    connection = _BatchingConnection(
        pika.ConnectionParameters(), internal_connection_workflow=False, custom_ioloop=_IOLOOP[0]
    )
    connection._set_connection_state(connection.CONNECTION_OPEN)
    rejected: list[tuple[int, bool]] = []
    for number in (1, 2):
        channel = connection._create_channel(number, None)
        channel._set_state(channel.OPEN)
        channel._consumers["ctag"] = consumer
        if auto_ack:
            channel._consumers_with_noack.add("ctag")
        channel.basic_reject = lambda tag, requeue=True: rejected.append((tag, requeue))  # type: ignore[method-assign]
        connection._channels[number] = channel
    return connection, rejected


HOSTILE = table([(b"when", b"T" + struct.pack(">Q", 2**64 - 1)), (b"deep", nested(3000, "F"))])


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(message(properties(HOSTILE), b"fast"), id="fast-path"),
        pytest.param(
            message(properties(HOSTILE), b"b" * (_frames.MAX_FAST_BODY + 1)), id="big-body"
        ),
        pytest.param(  # a second property flag word: left to pika, whose decoder raises
            message(properties(HOSTILE, second_flag_word=True), b"flags"),
            id="second-flag-word",
        ),
        pytest.param(  # another channel's message between this one's frames
            pika.frame.Method(1, pika.spec.Basic.Deliver("ctag", 7, False, "", "q")).marshal()
            + message(properties(HOSTILE), b"other", channel=2, tag=8)
            + header_frame(1, 5, properties(HOSTILE))
            + frame(3, 1, b"first"),
            id="interleaved",
        ),
    ],
)
def test_the_reader_hands_undecodable_headers_to_the_consumer_on_every_path(
    stream: bytes,
) -> None:
    consumer = Recorder()
    connection, _ = open_connection(consumer)
    for start in range(0, len(stream), 5000):  # read in bites, as from a socket
        connection._on_data_available(stream[start : start + 5000])
    assert consumer.seen
    for _method, props, _body in consumer.seen:
        assert isinstance(props, UndecodableProperties)
        assert "could not be decoded" in props.isc_error
        assert (props.correlation_id, props.reply_to) == ("cid-1", "reply-queue")
    assert connection._frame_buffer == b""
    assert connection.bytes_received == len(stream)


def test_a_broken_frame_still_fails_the_connection_as_with_pika() -> None:
    connection, _ = open_connection(Recorder())
    with pytest.raises(pika.exceptions.InvalidFrameError):
        connection._on_data_available(pika.frame.Heartbeat().marshal()[:-1] + b"\x00")


@pytest.mark.parametrize("big", [False, True], ids=["fast-path", "pikas-path"])
@pytest.mark.parametrize("auto_ack", [False, True], ids=["manual-ack", "auto-ack"])
def test_a_consumer_that_raises_costs_the_message_not_the_connection(
    big: bool, auto_ack: bool, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = Recorder(fail=True)
    connection, rejected = open_connection(consumer, auto_ack=auto_ack)
    body = b"b" * (_frames.MAX_FAST_BODY + 1 if big else 10)
    stream = message(properties(table([])), body, tag=3) + message(
        properties(table([])), body, tag=4
    )
    connection._on_data_available(stream)
    assert [method.delivery_tag for method, _, _ in consumer.seen] == [3, 4]  # both delivered
    assert connection.failed_deliveries == 2
    assert rejected == ([] if auto_ack else [(3, False), (4, False)])
    assert connection._frame_buffer == b""
    assert caplog.text.count("raised on delivery") == 2


def test_channels_still_dispatch_deliveries_through_pikas_seam() -> None:
    """The slow path's safety net overrides pika's ``Channel._on_deliver``: it must exist."""
    assert callable(pika.channel.Channel._on_deliver)
    connection, _ = open_connection(Recorder())
    assert isinstance(connection._channels[1]._consumers_with_noack, set)


# -- the client's reply queue --------------------------------------------------------------------

NOWHERE = "amqp://guest:guest@127.0.0.1:1/"


def test_a_reply_with_undecodable_headers_fails_its_call_and_no_other() -> None:
    client = Client(NOWHERE, reconnect_timeout=0)
    try:
        hit = client.call_async("calc", "add", (1, 1), timeout=30)
        other = client.call_async("calc", "add", (2, 2), timeout=30)
        cid = hit.extra["correlation_id"]
        reply = Reply.success(cid, 2).encode(TypedJSONCodec())
        props = properties(HOSTILE)
        props = props.replace(shortstr(b"cid-1"), shortstr(cid.encode()))
        found = parse_delivery(message(props, reply.body), 0)
        assert isinstance(found, Delivery)
        client._calls.on_delivery(None, found.method, found.properties, found.body)
        with pytest.raises(DecodeError, match="AMQP headers could not be decoded"):
            hit.result(0)
        assert not other.done()

        # A non-UTF-8 correlation id, and an unknown one with undecodable headers: dropped.
        dropped = client.stats["dropped_replies"]
        bad_cid = P(correlation_id=b"\xff\xfe")  # type: ignore[arg-type]
        client._calls.on_delivery(None, found.method, bad_cid, reply.body)
        client._calls.on_delivery(None, found.method, found.properties, found.body)
        assert client.stats["dropped_replies"] == dropped + 2

        ok = Reply.success(other.extra["correlation_id"], 4).encode(TypedJSONCodec())
        client._calls.on_delivery(
            None, found.method, P(correlation_id=ok.correlation_id, headers=ok.headers), ok.body
        )
        assert other.result(0) == 4
    finally:
        client.stop()


def test_the_marker_is_a_pika_properties_object() -> None:
    props = parse_delivery(message(properties(HOSTILE)), 0)
    assert isinstance(props, Delivery)
    assert isinstance(props.properties, pika.spec.BasicProperties)
    assert props.properties.headers == {}
