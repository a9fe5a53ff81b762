"""The per-message pieces of a call, isc's against pika's or the standard library's (no broker).

    python benchmarks/micro.py [--number 50000]

Each line is the time of one operation in microseconds (the best of 5 ``timeit`` repeats),
for a request or reply shaped like the benchmark's ``calc.add(5, 1)`` with typedjson. Like
every figure here, only the ratio of two lines from the same run means something.
"""

from __future__ import annotations

import argparse
import json
import timeit
import uuid
from collections.abc import Callable

import pika
import pika.frame
import pika.spec

from isc.client._frames import ack_frame, encode_properties, parse_delivery, publish_frames
from isc.core import Envelope, TypedJSONCodec, new_correlation_id

HEADERS = {"x-isc-version": 2, "x-isc-deadline": 1764690000000}
CORRELATION_ID = "1b2c3d4e-1234-4567-89ab-000000000001"
REPLY_TO = "response-1b2c3d4e-1234-4567-89ab-0123456789ab"
BODY = b'["add", [5, 1], {}]'
PROPERTIES = pika.BasicProperties(
    content_type="typedjson",
    content_encoding="utf-8",
    headers=HEADERS,
    correlation_id=CORRELATION_ID,
    reply_to=REPLY_TO,
    expiration="60000",
)
DELIVERY = b"".join(
    [
        pika.frame.Method(
            1, pika.spec.Basic.Deliver("ctag1.abcdef", 42, False, "isc", "isc_service_calc")
        ).marshal(),
        pika.frame.Header(1, len(BODY), PROPERTIES).marshal(),
        pika.frame.Body(1, BODY).marshal(),
    ]
)


def pika_publish() -> list[bytes]:
    """What pika's ``basic_publish`` marshals for one request."""
    properties = pika.BasicProperties(
        content_type="typedjson",
        content_encoding="utf-8",
        headers=dict(HEADERS),
        correlation_id=CORRELATION_ID,
        reply_to=REPLY_TO,
        expiration="60000",
    )
    method = pika.spec.Basic.Publish(exchange="isc", routing_key="isc_service_calc", mandatory=True)
    return [
        pika.frame.Method(1, method).marshal(),
        pika.frame.Header(1, len(BODY), properties).marshal(),
        pika.frame.Body(1, BODY).marshal(),
    ]


def isc_publish() -> bytes:
    """What isc's channel writes for the same request."""
    properties = encode_properties("typedjson", "utf-8", HEADERS, CORRELATION_ID, REPLY_TO, "60000")
    return publish_frames(
        1, "isc", "isc_service_calc", BODY, properties, mandatory=True, max_body_frame=131064
    )


def pika_delivery() -> list[object]:
    """pika reading one delivered request: three frames, each off a copy of the buffer."""
    buffer, frames = DELIVERY, []
    while buffer:
        consumed, frame = pika.frame.decode_frame(buffer)
        buffer = buffer[consumed:]
        frames.append(frame)
    return frames


def main() -> None:
    """Time every pair and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=50_000)
    number = parser.parse_args().number
    codec = TypedJSONCodec()
    payload = codec.encode(["add", [5, 1], {}])
    fields = (b"x", "json", "utf-8", "cid", "rt", {"a": 1})
    pairs: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("publish a request (frames)", pika_publish, isc_publish),
        ("read a delivered request", pika_delivery, lambda: parse_delivery(DELIVERY, 0)),
        (
            "encode an ack",
            lambda: pika.frame.Method(1, pika.spec.Basic.Ack(5, False)).marshal(),
            lambda: ack_frame(1, 5),
        ),
        ("a correlation id", lambda: str(uuid.uuid4()), new_correlation_id),
        (
            "typedjson-decode a request",
            lambda: json.loads(payload, object_hook=codec._decode_object),
            lambda: codec.decode(payload),
        ),
        ("an Envelope", lambda: _dataclass_envelope(*fields), lambda: Envelope(*fields)),
    ]
    print(f"{'operation':32} {'before us':>10} {'isc us':>10} {'ratio':>7}")
    for name, before, after in pairs:
        b = min(timeit.repeat(before, number=number, repeat=5)) / number * 1e6
        a = min(timeit.repeat(after, number=number, repeat=5)) / number * 1e6
        print(f"{name:32} {b:10.2f} {a:10.2f} {a / b:7.2f}")


def _dataclass_envelope(*fields: object) -> object:
    """An Envelope built the way a frozen dataclass's generated ``__init__`` does."""
    envelope = object.__new__(Envelope)
    for name, value in zip(
        ("body", "content_type", "content_encoding", "correlation_id", "reply_to", "headers"),
        fields,
    ):
        object.__setattr__(envelope, name, value)
    return envelope


if __name__ == "__main__":
    main()
