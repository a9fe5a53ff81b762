"""The golden examples of docs/protocol.md, executed: encode gives the printed bytes, and the
printed bytes decode to the message."""

from __future__ import annotations

import ast
import datetime
import decimal
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from isc.codecs import get_codec
from isc.core import Envelope, Notification, Reply, Request

PROTOCOL_DOC = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"
BLOCK = re.compile(r"^```golden\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Names the examples may use in their `message:` lines.
NAMES: dict[str, Any] = {
    "datetime": datetime.datetime,
    "date": datetime.date,
    "time": datetime.time,
    "timezone": datetime.timezone,
    "timedelta": datetime.timedelta,
    "UUID": uuid.UUID,
    "Decimal": decimal.Decimal,
}


def load_examples() -> list[dict[str, str]]:
    """Every ```golden block of the protocol doc, as a dict of its `key: value` lines."""
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    examples = []
    for match in BLOCK.finditer(text):
        fields = dict(line.split(": ", 1) for line in match.group(1).splitlines() if line)
        examples.append(fields)
    return examples


EXAMPLES = load_examples()


def example_id(example: dict[str, str]) -> str:
    return f"{example['codec']}-{example['kind']}-{example['message'][:30]}"


def build(kind: str, value: tuple[Any, ...]) -> Request | Reply | Notification:
    if kind == "request":
        method, args, kwargs = value
        return Request(method, args, kwargs)
    if kind == "reply":
        error, result = value
        return Reply.success("c", result) if error is None else Reply.failure("c", error)
    if kind == "notification":
        event, args, kwargs = value
        return Notification(event, args, kwargs)
    raise AssertionError(f"unknown kind {kind!r} in {PROTOCOL_DOC}")


def listify(value: Any) -> Any:
    """What the JSON-family codecs return for ``value``: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [listify(v) for v in value]
    if isinstance(value, dict):
        return {k: listify(v) for k, v in value.items()}
    return value


def test_the_doc_has_examples_of_every_codec_and_kind() -> None:
    seen = {(e["codec"], e["kind"]) for e in EXAMPLES}
    for codec in ("pickle", "json", "typedjson", "msgpack"):
        for kind in ("request", "reply", "notification"):
            assert (codec, kind) in seen, f"docs/protocol.md lacks a {codec} {kind} example"


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_golden_example(example: dict[str, str]) -> None:
    codec = get_codec(example["codec"])
    value = eval(example["message"], {"__builtins__": {}}, NAMES)  # the repo's own doc
    expected_body = ast.literal_eval(example["body"])

    envelope = build(example["kind"], value).encode(codec)
    assert envelope.body == expected_body
    assert envelope.content_type == example["codec"]

    received = Envelope(body=expected_body, content_type=codec.content_type)
    message_type = type(build(example["kind"], value))
    decoded = message_type.decode(received, codec)  # type: ignore[attr-defined]
    normalize = (lambda v: v) if example["codec"] == "pickle" else listify
    if isinstance(decoded, Request):
        got: tuple[Any, ...] = (decoded.method, decoded.args, decoded.kwargs)
    elif isinstance(decoded, Reply):
        got = (decoded.error, decoded.result)
    else:
        got = (decoded.event, decoded.args, decoded.kwargs)
    assert normalize(got) == normalize(value)
