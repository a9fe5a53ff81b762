"""The documented ``isc.codecs`` module: its names, ``get_codec`` and custom codecs."""

from __future__ import annotations

import json
from typing import Any

import pytest

import isc.codecs
import isc.core.codecs
import isc.core.errors
from isc.codecs import CODECS, AbstractCodec, CodecRegistry, get_codec


@pytest.mark.parametrize(
    "name", ["AbstractCodec", "PickleCodec", "JSONCodec", "TypedJSONCodec", "CodecRegistry"]
)
def test_reexports_the_core_codecs(name: str) -> None:
    assert getattr(isc.codecs, name) is getattr(isc.core.codecs, name)
    assert name in isc.codecs.__all__


@pytest.mark.parametrize(
    "name",
    ["CodecException", "CodecNotAllowedError", "DecodeError", "EncodeError", "UnknownCodecError"],
)
def test_reexports_the_codec_errors(name: str) -> None:
    assert getattr(isc.codecs, name) is getattr(isc.core.errors, name)


def test_every_name_in_all_exists() -> None:
    missing = [name for name in isc.codecs.__all__ if not hasattr(isc.codecs, name)]
    assert missing == []


def test_isclib_text_and_binary_types() -> None:
    assert isc.codecs.text_type is str
    assert isc.codecs.binary_type is bytes


def test_codecs_lists_every_shipped_codec() -> None:
    assert sorted(CODECS) == ["json", "msgpack", "pickle", "typedjson"]
    for name, codec_class in CODECS.items():
        assert codec_class.content_type == name


@pytest.mark.parametrize("name", sorted(CODECS))
def test_get_codec_returns_a_new_working_codec(name: str) -> None:
    codec = get_codec(name)
    assert type(codec) is CODECS[name]
    assert codec.content_type == name
    assert get_codec(name) is not codec
    message = ["call", {"args": [1, 2.5, None, True, "\u00e9"]}]
    assert codec.decode(codec.encode(message)) == message


def test_get_codec_refuses_an_unknown_name() -> None:
    with pytest.raises(
        isc.codecs.UnknownCodecError,
        match=r"unknown codec 'yaml'; isc ships json, msgpack, pickle, typedjson",
    ):
        get_codec("yaml")


class ReversedJSONCodec(AbstractCodec):
    """A custom codec: JSON text written backwards."""

    content_type = "reversedjson"
    content_encoding = "utf-8"

    def encode(self, message: Any) -> bytes:
        return json.dumps(message)[::-1].encode("utf-8")

    def decode(self, payload: bytes) -> Any:
        return json.loads(payload.decode("utf-8")[::-1])


def test_a_custom_codec_works() -> None:
    codec = ReversedJSONCodec()
    assert codec.encode({"a": [1, 2]}) == b'}]2 ,1[ :"a"{'
    assert codec.decode(codec.encode(("x", {"a": 1}))) == ["x", {"a": 1}]
    assert repr(codec) == "ReversedJSONCodec()"


def test_a_custom_codec_can_be_registered() -> None:
    registry = CodecRegistry([ReversedJSONCodec()])
    assert registry.names == ["reversedjson"]
    codec = registry.get("reversedjson")
    assert codec.decode(codec.encode([1])) == [1]


def test_the_abstract_codec_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError, match=r"abstract"):
        AbstractCodec()  # type: ignore[abstract]


def test_a_codec_without_decode_cannot_be_instantiated() -> None:
    class EncodeOnly(AbstractCodec):
        content_type = "encodeonly"

        def encode(self, message: Any) -> bytes:
            return b""

    with pytest.raises(TypeError, match=r"abstract.*decode"):
        EncodeOnly()  # type: ignore[abstract]


def test_a_codec_without_encode_cannot_be_instantiated() -> None:
    class DecodeOnly(AbstractCodec):
        content_type = "decodeonly"

        def decode(self, payload: bytes) -> Any:
            return None

    with pytest.raises(TypeError, match=r"abstract.*encode"):
        DecodeOnly()  # type: ignore[abstract]
