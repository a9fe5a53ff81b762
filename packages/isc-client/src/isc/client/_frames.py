"""AMQP 0-9-1 frames on isc's hot path, encoded and decoded without pika's generic codec.

Every call is two published messages and two deliveries, and pika builds each from objects:
a ``Basic.Publish``, a ``BasicProperties`` and three ``Frame`` objects, each marshalled on
its own through a list of pieces; on the way in, three frames decoded one by one, each
trimmed off a copy of the read buffer. On a 2-core machine that is about 40% of a
sequential call's CPU on either side. This module does the same work in a few ``struct``
calls, for the few shapes isc sends and receives:

- :func:`publish_frames`: the method, header and body frames of a ``Basic.Publish``, as one
  buffer;
- :func:`ack_frame`: a ``Basic.Ack``;
- :func:`encode_properties` / :func:`decode_properties`: the content header's properties,
  with pika's own types (:class:`pika.spec.BasicProperties`), and pika's field-value codec
  for header values other than strings, integers and booleans;
- :func:`parse_delivery`: a whole ``Basic.Deliver`` message (method, header and body
  frames) from a read buffer, or word that it is incomplete or unusual;
- :func:`salvage_header`: a content header pika's decoder failed on, as a header frame whose
  properties say so (:class:`UndecodableProperties`).

Every byte from the wire is hostile. A content header whose frames are well-formed but whose
property values cannot be turned into Python (a timestamp past ``datetime``'s range, tables
nested thousands deep, a float that is not a number, an unknown field kind, ...) is still
delivered, with :class:`UndecodableProperties`: what could be read of them (the headers table
is skipped by its declared size, so ``content_type``, ``correlation_id`` and ``reply_to``
usually survive) and why the rest could not. Consumers check for that type and reject the
message; the connection is never lost over it.

The bytes are the ones pika 1.4 produces (pika 1.3 typed 64-bit header integers ``L``; isc,
like 1.4, writes the signed ``l`` RabbitMQ reads), which the unit tests check frame by frame
against pika's own encoder and decoder. Anything unusual (a second property flag word, frames of a
message interleaved with another channel's, a large body) is left to pika.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import pika.compat
import pika.data
import pika.exceptions
import pika.frame
import pika.spec

__all__ = [
    "FRAME_END",
    "Delivery",
    "UndecodableProperties",
    "ack_frame",
    "decode_properties",
    "encode_properties",
    "parse_delivery",
    "publish_frames",
    "salvage_header",
]

FRAME_END = 0xCE
_END = b"\xce"
_FRAME_HEAD = struct.Struct(">BHI")  # type, channel, payload size
_HEADER_HEAD = struct.Struct(">HHQ")  # class id, weight, body size
_ACK = struct.Struct(">BHIHHQBB")  # a whole Basic.Ack frame
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_DELIVER_TAG = struct.Struct(">QB")  # delivery tag, redelivered bit

_METHOD, _HEADER, _BODY = 1, 2, 3
_PUBLISH_ID = b"\x00\x3c\x00\x28\x00\x00"  # Basic.Publish (60, 40), ticket 0
_DELIVER_ID = b"\x00\x3c\x00\x3c"  # Basic.Deliver (60, 60)
_BASIC = 60
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

_P = pika.spec.BasicProperties
#: Every property pika's BasicProperties has, unset: a decoded message's starting point.
_UNSET: dict[str, Any] = dict(vars(_P()))
#: A message bigger than this is left to pika: waiting for all of its frames in one buffer
#: would copy the buffer again for every read.
MAX_FAST_BODY = 256 * 1024

# -- encoding ---------------------------------------------------------------------------------


def _shortstr(value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) > 255:
        raise pika.exceptions.ShortStringTooLong(raw)
    return _U8.pack(len(raw)) + raw


#: Encoded short strings that recur from message to message: exchanges, routing keys,
#: content types, header names, the reply queue. (Never correlation ids: each is new.)
_RECURRING: dict[str | bytes, bytes] = {}
_MAX_RECURRING = 1024


def _recurring_shortstr(value: str | bytes) -> bytes:
    encoded = _RECURRING.get(value)
    if encoded is None:
        encoded = _shortstr(value)
        if len(_RECURRING) >= _MAX_RECURRING:
            _RECURRING.clear()
        _RECURRING[value] = encoded
    return encoded


def _table(table: Mapping[str, Any]) -> bytes:
    pieces: list[bytes] = []
    for key, value in table.items():
        pieces.append(_recurring_shortstr(key))
        kind = type(value)
        if kind is str:
            raw = value.encode("utf-8")
            pieces.append(b"S" + _U32.pack(len(raw)) + raw)
        elif kind is int and _INT32_MIN <= value <= _INT32_MAX:
            pieces.append(b"I" + _I32.pack(value))
        elif kind is int:
            pieces.append(b"l" + _I64.pack(value))
        else:  # bytes, bool, decimal, datetime, nested tables and lists, None: pika's codec
            pika.data.encode_value(pieces, value)
    encoded = b"".join(pieces)
    return _U32.pack(len(encoded)) + encoded


def encode_properties(
    content_type: str | None = None,
    content_encoding: str | None = None,
    headers: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    expiration: str | None = None,
    delivery_mode: int | None = None,
) -> bytes:
    """The property flags and values of a content header, as pika would encode them."""
    flags = 0
    pieces: list[bytes] = []
    if content_type is not None:
        flags |= _P.FLAG_CONTENT_TYPE
        pieces.append(_recurring_shortstr(content_type))
    if content_encoding is not None:
        flags |= _P.FLAG_CONTENT_ENCODING
        pieces.append(_recurring_shortstr(content_encoding))
    if headers is not None:
        flags |= _P.FLAG_HEADERS
        pieces.append(_table(headers))
    if delivery_mode is not None:
        flags |= _P.FLAG_DELIVERY_MODE
        pieces.append(bytes((delivery_mode,)))
    if correlation_id is not None:
        flags |= _P.FLAG_CORRELATION_ID
        pieces.append(_shortstr(correlation_id))
    if reply_to is not None:
        flags |= _P.FLAG_REPLY_TO
        pieces.append(_recurring_shortstr(reply_to))
    if expiration is not None:
        flags |= _P.FLAG_EXPIRATION
        pieces.append(_shortstr(expiration))
    return _U16.pack(flags) + b"".join(pieces)


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _FRAME_HEAD.pack(kind, channel, len(payload)) + payload + _END


def publish_frames(
    channel: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: bytes,
    *,
    mandatory: bool = False,
    max_body_frame: int,
) -> bytes:
    """A ``Basic.Publish`` of ``body`` with encoded ``properties``: every frame, one buffer.

    ``max_body_frame`` is the connection's largest body frame payload (frame_max - 8).
    """
    method = (
        _PUBLISH_ID
        + _recurring_shortstr(exchange)
        + _recurring_shortstr(routing_key)
        + (b"\x01" if mandatory else b"\x00")
    )
    size = len(body)
    parts = [
        _frame(_METHOD, channel, method),
        _frame(_HEADER, channel, _HEADER_HEAD.pack(_BASIC, 0, size) + properties),
    ]
    if size <= max_body_frame:
        if size:
            parts.append(_FRAME_HEAD.pack(_BODY, channel, size))
            parts.append(body)
            parts.append(_END)
    else:
        view = memoryview(body)
        for start in range(0, size, max_body_frame):
            chunk = view[start : start + max_body_frame]
            parts.append(_FRAME_HEAD.pack(_BODY, channel, len(chunk)))
            parts.append(chunk)  # type: ignore[arg-type]  # join takes any buffer
            parts.append(_END)
    return b"".join(parts)


def ack_frame(channel: int, delivery_tag: int, multiple: bool = False) -> bytes:
    """A ``Basic.Ack`` frame."""
    return _ACK.pack(_METHOD, channel, 13, _BASIC, 80, delivery_tag, multiple, FRAME_END)


# -- decoding ---------------------------------------------------------------------------------


def _read_shortstr(data: bytes, offset: int) -> tuple[str | bytes, int]:
    end = offset + 1 + data[offset]
    raw = data[offset + 1 : end]
    if len(raw) != end - offset - 1:
        raise struct.error("short string past the end of the frame")
    try:
        return raw.decode(), end
    except UnicodeDecodeError:  # pika keeps undecodable short strings as bytes
        return raw, end


def _read_table(data: bytes, offset: int) -> tuple[dict[str | bytes, Any], int]:
    limit = offset + 4 + _U32.unpack_from(data, offset)[0]
    offset += 4
    table: dict[str | bytes, Any] = {}
    while offset < limit:
        end = offset + 1 + data[offset]
        key: str | bytes = data[offset + 1 : end]
        try:  # noqa: SIM105 - on every message: no context manager object
            key = key.decode()  # type: ignore[union-attr]
        except UnicodeDecodeError:
            pass
        kind = data[end]
        if kind == 0x53:  # 'S'
            start = end + 5
            offset = start + _U32.unpack_from(data, end + 1)[0]
            value: Any = data[start:offset]
            try:  # noqa: SIM105 - on every message: no context manager object
                value = value.decode()
            except UnicodeDecodeError:
                pass
            table[key] = value
        elif kind == 0x49:  # 'I'
            table[key] = _I32.unpack_from(data, end + 1)[0]
            offset = end + 5
        elif kind == 0x6C:  # 'l'
            table[key] = pika.compat.long(_I64.unpack_from(data, end + 1)[0])
            offset = end + 9
        else:
            table[key], offset = pika.data.decode_value(data, end)
    if offset != limit:
        raise struct.error("table past its declared size")
    return table, offset


def decode_properties(data: bytes, offset: int = 0) -> pika.spec.BasicProperties:
    """Decode a content header's properties (from the flags on) into pika's type.

    Raises ``struct.error``, ``IndexError`` or ``ValueError`` on truncated data, and
    ``ValueError`` on a second flag word (which AMQP 0-9-1's basic class never needs).
    """
    properties, end = _decode_properties(data, offset)
    if end > len(data):
        raise ValueError("properties past the end of the data")
    return properties


_SHORT, _TABLE, _OCTET, _STAMP = range(4)
#: Every basic property: its flag, name and kind, in wire order.
_FIELDS = (
    (_P.FLAG_CONTENT_TYPE, "content_type", _SHORT),
    (_P.FLAG_CONTENT_ENCODING, "content_encoding", _SHORT),
    (_P.FLAG_HEADERS, "headers", _TABLE),
    (_P.FLAG_DELIVERY_MODE, "delivery_mode", _OCTET),
    (_P.FLAG_PRIORITY, "priority", _OCTET),
    (_P.FLAG_CORRELATION_ID, "correlation_id", _SHORT),
    (_P.FLAG_REPLY_TO, "reply_to", _SHORT),
    (_P.FLAG_EXPIRATION, "expiration", _SHORT),
    (_P.FLAG_MESSAGE_ID, "message_id", _SHORT),
    (_P.FLAG_TIMESTAMP, "timestamp", _STAMP),
    (_P.FLAG_TYPE, "type", _SHORT),
    (_P.FLAG_USER_ID, "user_id", _SHORT),
    (_P.FLAG_APP_ID, "app_id", _SHORT),
    (_P.FLAG_CLUSTER_ID, "cluster_id", _SHORT),
)
#: For each flag word seen so far, the (name, kind) of the properties it announces.
_PLANS: dict[int, tuple[tuple[str, int], ...]] = {}


class _UnusualFlags(ValueError):
    """Property flags this module leaves to pika: a continuation word, or a reserved bit."""


def _plan(flags: int) -> tuple[tuple[str, int], ...]:
    plan = _PLANS.get(flags)
    if plan is None:
        if flags & 0x3:  # a continuation flag word, or a reserved bit set
            raise _UnusualFlags(f"property flags {flags:#06x} are not basic properties")
        plan = _PLANS[flags] = tuple((name, kind) for flag, name, kind in _FIELDS if flags & flag)
    return plan


def _decode_properties(data: bytes, offset: int) -> tuple[pika.spec.BasicProperties, int]:
    """The properties at ``offset`` and the offset past them, which may lie past the end of
    ``data`` when it is truncated (the caller checks)."""
    plan = _plan(data[offset] << 8 | data[offset + 1])
    offset += 2
    values = _UNSET.copy()
    for name, kind in plan:
        if kind == _SHORT:
            end = offset + 1 + data[offset]
            raw = data[offset + 1 : end]
            offset = end
            try:
                values[name] = raw.decode()
            except UnicodeDecodeError:  # pika keeps undecodable short strings as bytes
                values[name] = raw
        elif kind == _TABLE:
            values[name], offset = _read_table(data, offset)
        elif kind == _OCTET:
            values[name] = data[offset]
            offset += 1
        else:
            values[name] = _U64.unpack_from(data, offset)[0]
            offset += 8
    properties: pika.spec.BasicProperties = _P.__new__(_P)
    properties.__dict__ = values
    return properties, offset


class UndecodableProperties(pika.spec.BasicProperties):  # type: ignore[misc]
    """The properties of a message whose content header could not be decoded in full.

    The frames were whole, but a property value could not be turned into Python (a
    timestamp past ``datetime``'s range, tables nested past the recursion limit, a field
    kind AMQP does not define, ...). Every property that could be read is set, the others
    are ``None``; ``headers`` is ``{}`` when the headers table could not be read (it is
    skipped by its declared size, so the properties after it survive). Consumers check
    ``isinstance(properties, UndecodableProperties)`` and reject the message, with an error
    reply when ``reply_to`` and ``correlation_id`` could be read.
    """

    #: what could not be decoded, and why (one line, for logs and error replies)
    isc_error: str = ""


#: The longest description of a decoding failure kept in :attr:`UndecodableProperties.isc_error`.
_MAX_ERROR = 240


def _describe_error(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # an exception whose message cannot be rendered
        text = ""
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


def _salvage_properties(
    data: bytes, offset: int, end: int, error: BaseException | None = None
) -> UndecodableProperties:
    """The properties in ``data[offset:end]``, as far as they can be read; never raises.

    The slow path for a content header the fast decoder (or pika's) failed on, with that
    ``error``: nothing past ``end`` is read, a headers table that cannot be decoded is
    skipped by its declared size, and reading stops at the first other property that does
    not fit.
    """
    payload = data[offset:end]
    size = len(payload)
    values = _UNSET.copy()
    problems: list[str] = []
    name = "flags"
    pos = 0
    try:
        flags = word = _U16.unpack_from(payload, 0)[0]
        pos = 2
        while word & 1:  # continuation flag words announce nothing basic: skip them, as pika
            word = _U16.unpack_from(payload, pos)[0]
            pos += 2
        for flag, name, kind in _FIELDS:
            if not flags & flag:
                continue
            if kind == _SHORT:
                stop = pos + 1 + payload[pos]
                if stop > size:
                    raise ValueError("a short string runs past the end of the content header")
                raw = payload[pos + 1 : stop]
                try:
                    values[name] = raw.decode()
                except UnicodeDecodeError:  # as pika: undecodable short strings stay bytes
                    values[name] = raw
                pos = stop
            elif kind == _TABLE:
                stop = pos + 4 + _U32.unpack_from(payload, pos)[0]
                if stop > size:
                    raise ValueError("the table runs past the end of the content header")
                try:
                    values[name] = _read_table(payload[:stop], pos)[0]
                except Exception as exc:  # any value of any kind: skip the whole table
                    values[name] = {}
                    why = _describe_error(exc)
                    problems.append(f"the headers table could not be decoded ({why})")
                pos = stop
            elif kind == _OCTET:
                values[name] = payload[pos]
                pos += 1
            else:
                values[name] = _U64.unpack_from(payload, pos)[0]
                pos += 8
        if pos != size:
            problems.append(f"{size - pos} unexpected byte(s) after the properties")
    except Exception as exc:
        problems.append(f"property {name} could not be decoded ({_describe_error(exc)})")
    if not problems:  # this reading found nothing wrong, but the one before failed
        problems.append(
            "the content header could not be decoded"
            + (f" ({_describe_error(error)})" if error is not None else "")
        )
    properties: UndecodableProperties = UndecodableProperties.__new__(UndecodableProperties)
    properties.__dict__ = values
    properties.isc_error = "; ".join(problems)
    return properties


def salvage_header(frame: bytes, error: BaseException) -> pika.frame.Header | None:
    """A content header frame pika's decoder raised ``error`` on, as a header frame with
    :class:`UndecodableProperties`; ``None`` when ``frame`` (one whole frame, from its type
    octet to its end octet) is not a well-formed basic content header frame. Never raises.
    """
    try:
        kind, channel, length = _FRAME_HEAD.unpack_from(frame, 0)
        if kind != _HEADER or length < 14 or len(frame) != length + 8 or frame[-1] != FRAME_END:
            return None
        class_id, _weight, body_size = _HEADER_HEAD.unpack_from(frame, 7)
    except (struct.error, IndexError):
        return None
    if class_id != _BASIC:
        return None
    properties = _salvage_properties(frame, 19, len(frame) - 1, error)
    return pika.frame.Header(channel, body_size, properties)


class Delivery:
    """A ``Basic.Deliver`` message read whole from a buffer by :func:`parse_delivery`."""

    __slots__ = ("body", "channel", "end", "frames", "method", "properties")

    def __init__(
        self,
        channel: int,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
        end: int,
        frames: int,
    ) -> None:
        self.channel = channel
        self.method = method
        self.properties = properties
        self.body = body
        #: the offset just past the message's last frame
        self.end = end
        #: how many frames it took
        self.frames = frames


#: :func:`parse_delivery`'s answers other than a :class:`Delivery`.
INCOMPLETE = 0  # the message's frames have not all arrived: wait for more data
NOT_FAST = -1  # not a Basic.Deliver this module reads: give the frame to pika


def parse_delivery(data: bytes, offset: int) -> Delivery | int:
    """Read a whole ``Basic.Deliver`` message starting at ``offset`` in ``data``.

    Returns a :class:`Delivery`, :data:`INCOMPLETE` when more data must arrive first, or
    :data:`NOT_FAST` when the frame at ``offset`` is anything else, the message is unusual
    (its frames interleaved with another channel's, a second property flag word, a bad frame
    end, a body over :data:`MAX_FAST_BODY`) or malformed: pika then reads it frame by frame,
    and reports what is wrong with it. Never raises.

    A message whose frames are whole but whose properties cannot be decoded (a header value
    of a kind or size Python cannot hold, a property that does not fit its frame) is
    delivered with :class:`UndecodableProperties`.
    """
    size = len(data)
    if size - offset < 7:
        return INCOMPLETE
    kind, channel, length = _FRAME_HEAD.unpack_from(data, offset)
    method_end = offset + 8 + length
    if kind != _METHOD:
        return NOT_FAST
    if method_end > size:
        return INCOMPLETE
    if data[offset + 7 : offset + 11] != _DELIVER_ID:
        return NOT_FAST
    try:
        if data[method_end - 1] != FRAME_END:
            return NOT_FAST
        consumer_tag, pos = _read_shortstr(data, offset + 11)
        delivery_tag, bits = _DELIVER_TAG.unpack_from(data, pos)
        exchange, pos = _read_shortstr(data, pos + 9)
        routing_key, pos = _read_shortstr(data, pos)
        if pos != method_end - 1:
            return NOT_FAST

        if size - method_end < 7:
            return INCOMPLETE
        kind, frame_channel, length = _FRAME_HEAD.unpack_from(data, method_end)
        if kind != _HEADER or frame_channel != channel:
            return NOT_FAST
        header_end = method_end + 8 + length
        if header_end > size:
            return INCOMPLETE
        if data[header_end - 1] != FRAME_END or length < 14:
            return NOT_FAST
        class_id, _weight, body_size = _HEADER_HEAD.unpack_from(data, method_end + 7)
        if class_id != _BASIC or body_size > MAX_FAST_BODY:
            return NOT_FAST
        try:
            properties, pos = _decode_properties(data, method_end + 19)
        except _UnusualFlags:
            return NOT_FAST
        except Exception as exc:  # whole frames, undecodable values: deliver it, marked
            properties = _salvage_properties(data, method_end + 19, header_end - 1, exc)
            pos = header_end - 1
        if pos != header_end - 1:
            return NOT_FAST

        pos = header_end
        frames = 2
        chunks: list[bytes] = []
        remaining = body_size
        while remaining > 0:
            if size - pos < 7:
                return INCOMPLETE
            kind, frame_channel, length = _FRAME_HEAD.unpack_from(data, pos)
            if kind != _BODY or frame_channel != channel or length > remaining:
                return NOT_FAST
            end = pos + 8 + length
            if end > size:
                return INCOMPLETE
            if data[end - 1] != FRAME_END:
                return NOT_FAST
            chunks.append(data[pos + 7 : end - 1])
            remaining -= length
            pos = end
            frames += 1
    except Exception:  # a malformed method or body frame: pika reports it
        return NOT_FAST
    if not chunks:
        body = b""
    elif len(chunks) == 1:
        body = chunks[0]
    else:
        body = b"".join(chunks)
    method = pika.spec.Basic.Deliver(
        consumer_tag, delivery_tag, bool(bits & 1), exchange, routing_key
    )
    return Delivery(channel, method, properties, body, pos, frames)
