"""Hand-made AMQP content headers: property values pika's encoder cannot (or will not) write.

``HandMadeProperties(encoded)`` goes through plain pika's ``basic_publish`` like any
``BasicProperties``, but its content header carries ``encoded`` byte for byte: a timestamp
past ``datetime``'s range, tables nested thousands deep. RabbitMQ relays them to consumers
verbatim; a plain pika consumer loses its connection on them.
"""

from __future__ import annotations

import struct

import pika
import pika.spec

__all__ = ["HOSTILE_HEADER_VALUES", "HandMadeProperties", "hostile_properties", "nested"]

_P = pika.spec.BasicProperties


class HandMadeProperties(pika.BasicProperties):  # type: ignore[misc]
    """Properties whose encoding (flags and values) is given as bytes."""

    def __init__(self, encoded: bytes) -> None:
        super().__init__()
        self._encoded = encoded

    def encode(self) -> list[bytes]:
        """What pika's header frame sends after the class id, weight and body size."""
        return [self._encoded]


def _shortstr(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


def _longstr(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def nested(depth: int, kind: str = "F", leaf: bytes = b"V") -> bytes:
    """A field value: tables (``F``) or arrays (``A``) nested ``depth`` deep around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = b"F" + _longstr(_shortstr(b"k") + value) if kind == "F" else b"A" + _longstr(value)
    return value


#: Header values (kind octet and value) that RabbitMQ relays and pika's decoder raises on.
#: (RabbitMQ 4 refuses NaN and infinite floats and unknown field kinds at publish, closing the
#: publisher's connection with 541 INTERNAL_ERROR: the unit tests cover those.)
HOSTILE_HEADER_VALUES: dict[str, bytes] = {
    "timestamp-past-time-t": b"T" + struct.pack(">Q", 2**64 - 1),  # OverflowError
    "timestamp-in-year-10000": b"T" + struct.pack(">Q", 253402300800),  # ValueError
    "tables-3000-deep": nested(3000, "F"),  # RecursionError
    "arrays-3000-deep": nested(3000, "A"),
}


def hostile_properties(
    value: bytes,
    *,
    content_type: str | bytes | None = None,
    correlation_id: str | bytes | None = None,
    reply_to: str | bytes | None = None,
) -> HandMadeProperties:
    """Properties with a headers table holding ``value`` under ``x-hostile``, between
    ``content_type`` and ``correlation_id`` / ``reply_to`` (which a reader can salvage)."""
    flags = _P.FLAG_HEADERS
    pieces = [_longstr(_shortstr(b"x-hostile") + value)]
    if content_type is not None:
        flags |= _P.FLAG_CONTENT_TYPE
        pieces.insert(0, _shortstr(_raw(content_type)))
    if correlation_id is not None:
        flags |= _P.FLAG_CORRELATION_ID
        pieces.append(_shortstr(_raw(correlation_id)))
    if reply_to is not None:
        flags |= _P.FLAG_REPLY_TO
        pieces.append(_shortstr(_raw(reply_to)))
    return HandMadeProperties(struct.pack(">H", flags) + b"".join(pieces))


def _raw(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
