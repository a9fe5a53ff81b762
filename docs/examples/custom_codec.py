"""A custom codec: typed JSON compressed with zlib, for services that send large values.

Shown in docs/codecs.md and executed by packages/isc-codecs/tests/test_docs_codecs.py.
Every peer that sends or receives with it must have it: register it on the nodes with
``node.register_codec(ZlibTypedJSONCodec())`` and give it to the clients with
``Client(codec=ZlibTypedJSONCodec())`` or ``client.set_codec(ZlibTypedJSONCodec())``.
"""

from __future__ import annotations

import zlib
from typing import Any

from isc.codecs import AbstractCodec, DecodeError, TypedJSONCodec


class ZlibTypedJSONCodec(AbstractCodec):
    """Typed JSON (datetimes, UUIDs, bytes, ...) compressed with zlib."""

    # Sent as the AMQP content_type of every message: a name no other codec uses.
    content_type = "typedjson+zlib"
    # The body is compressed bytes, not text.
    content_encoding = "binary"

    def __init__(self, level: int = 6) -> None:
        self._json = TypedJSONCodec()
        self._level = level

    def encode(self, message: Any) -> bytes:
        # TypedJSONCodec raises EncodeError for values it cannot write: let it through.
        return zlib.compress(self._json.encode(message), self._level)

    def decode(self, payload: bytes) -> Any:
        try:
            text = zlib.decompress(payload)
        except zlib.error as exc:
            raise DecodeError(f"typedjson+zlib cannot decompress the payload: {exc}") from exc
        # TypedJSONCodec raises DecodeError, saying what was wrong, for bad JSON.
        return self._json.decode(text)


if __name__ == "__main__":
    codec = ZlibTypedJSONCodec()
    message = ("add", ["5" * 8000, "3"], {})
    payload = codec.encode(message)
    print(f"{len(payload)} bytes on the wire")  # a few dozen bytes for 8000 characters
    assert codec.decode(payload) == ["add", ["5" * 8000, "3"], {}]
