"""The examples of docs/codecs.md, executed: the custom codec (docs/examples/custom_codec.py)
and choosing a client's codec (docs/examples/client_codecs.py).

The page includes those files verbatim, so these tests run exactly the code the reader sees.
"""

from __future__ import annotations

import datetime
import importlib.util
import runpy
import uuid
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from isc.codecs import AbstractCodec, CodecRegistry, DecodeError, EncodeError
from isc.core import Envelope, Notification, Reply, Request

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
EXAMPLE = EXAMPLES / "custom_codec.py"


def load_example() -> ModuleType:
    """Import docs/examples/custom_codec.py as a module."""
    spec = importlib.util.spec_from_file_location("custom_codec", EXAMPLE)
    assert spec is not None, f"cannot load {EXAMPLE}"
    assert spec.loader is not None, f"cannot load {EXAMPLE}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def codec() -> Any:
    return load_example().ZlibTypedJSONCodec()


def test_it_is_a_codec_with_its_own_content_type(codec: Any) -> None:
    assert isinstance(codec, AbstractCodec)
    assert codec.content_type == "typedjson+zlib"
    assert codec.content_encoding == "binary"


def test_a_request_round_trips_with_typed_values(codec: Any) -> None:
    when = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    envelope = Request("log", (when, ident, b"\x00\xff"), {"level": "info"}).encode(codec)
    assert envelope.content_type == "typedjson+zlib"

    received = Request.decode(Envelope(body=envelope.body, content_type="typedjson+zlib"), codec)
    assert received.method == "log"
    assert list(received.args) == [when, ident, b"\x00\xff"]
    assert received.kwargs == {"level": "info"}


def test_replies_and_notifications_round_trip(codec: Any) -> None:
    reply = Reply.decode(Reply.success("c", "5" * 8000).encode(codec), codec)
    assert (reply.error, reply.result) == (None, "5" * 8000)
    failure = Reply.decode(Reply.failure("c", "testing").encode(codec), codec)
    assert failure.error == "testing"
    event = Notification.decode(Notification("boom", ({"foo": "bar"},), {}).encode(codec), codec)
    assert (event.event, list(event.args)) == ("boom", [{"foo": "bar"}])


def test_it_compresses(codec: Any) -> None:
    assert len(codec.encode(["add", ["5" * 8000, "3"], {}])) < 1000


def test_a_registry_finds_it_by_content_type(codec: Any) -> None:
    registry = CodecRegistry()
    registry.register(codec)
    assert registry.get("typedjson+zlib") is codec


def test_bad_payloads_are_decode_errors(codec: Any) -> None:
    with pytest.raises(DecodeError, match="cannot decompress"):
        codec.decode(b"not zlib at all")
    with pytest.raises(DecodeError, match="typedjson cannot decode"):
        codec.decode(zlib.compress(b"[not json"))  # valid zlib, invalid JSON inside


def test_unencodable_values_are_encode_errors(codec: Any) -> None:
    with pytest.raises(EncodeError, match="typedjson"):
        codec.encode(("f", (object(),), {}))


def test_the_example_runs_as_a_program(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")  # its own assert checks the round trip
    assert capsys.readouterr().out.endswith(" bytes on the wire\n")


def test_the_client_codec_example_runs() -> None:
    """Its asserts check each step: the codec a client uses after each call."""
    namespace = runpy.run_path(str(EXAMPLES / "client_codecs.py"))
    client = namespace["client"]
    assert isinstance(client.codec, namespace["TypedJSONCodec"])
    assert client.is_connected is False  # it never needed a broker
