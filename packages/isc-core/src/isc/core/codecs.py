"""The codec contract and the codecs every isc peer speaks: pickle, JSON and typed JSON.

A codec turns a message (a tuple of plain values) into bytes and back. Its ``content_type``
travels in the AMQP ``content_type`` property, so a receiver can pick the matching codec.
The names are exactly those of isclib 1.x (``pickle``, ``json``, ``typedjson``).

Pickle executes code while decoding: a receiver must accept it only when configured to
(see :class:`CodecRegistry`).
"""

from __future__ import annotations

import abc
import datetime
import decimal
import json
import pickle
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from .errors import CodecNotAllowedError, DecodeError, EncodeError, UnknownCodecError

__all__ = [
    "AbstractCodec",
    "PickleCodec",
    "JSONCodec",
    "TypedJSONCodec",
    "CodecRegistry",
    "PICKLE_PROTOCOL",
    "OBJECT_TYPE_KEY",
    "OBJECT_VALUE_KEY",
    "describe_payload",
]

#: Pickle protocol used for encoding: 2, as isclib 1.x, so old peers on any Python read it.
PICKLE_PROTOCOL = 2

#: The keys of a typed-JSON tagged value: ``{"__object_type": ..., "__object_value": ...}``.
OBJECT_TYPE_KEY = "__object_type"
OBJECT_VALUE_KEY = "__object_value"

_PREVIEW_BYTES = 40


def describe_payload(payload: bytes) -> str:
    """Describe a payload for an error message: its size and its first bytes."""
    head = bytes(payload[:_PREVIEW_BYTES])
    more = "..." if len(payload) > _PREVIEW_BYTES else ""
    return f"{len(payload)} bytes starting {head!r}{more}"


class AbstractCodec(abc.ABC):
    """Base class of codecs: how isc encodes and decodes message payloads.

    Subclasses set ``content_type`` (a short unique name sent with every message) and
    implement :meth:`encode` and :meth:`decode`. A node may accept several codecs; a client
    speaks one at a time. Both sides must have the codec installed.
    """

    #: The name carried in the AMQP ``content_type`` property.
    content_type: ClassVar[str]
    #: The AMQP ``content_encoding``: ``binary`` for byte formats, ``utf-8`` for text formats.
    content_encoding: ClassVar[str] = "binary"

    @abc.abstractmethod
    def encode(self, message: Any) -> bytes:
        """Serialize ``message`` to bytes; raise :class:`EncodeError` if it cannot."""

    @abc.abstractmethod
    def decode(self, payload: bytes) -> Any:
        """Deserialize ``payload``; raise :class:`DecodeError` saying what was wrong."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PickleCodec(AbstractCodec):
    """Pickle (protocol 2, as isclib 1.x): any picklable Python object, tuples stay tuples.

    Decoding pickle runs arbitrary code chosen by the sender: accept it only from trusted
    peers. Nodes refuse it unless configured to accept it.
    """

    content_type = "pickle"

    def encode(self, message: Any) -> bytes:
        """Pickle ``message`` with protocol 2."""
        try:
            return pickle.dumps(message, protocol=PICKLE_PROTOCOL)
        except Exception as exc:
            raise EncodeError(f"pickle cannot encode {type(message).__name__}: {exc}") from exc

    def decode(self, payload: bytes) -> Any:
        """Unpickle ``payload``."""
        try:
            return pickle.loads(payload)
        except Exception as exc:
            raise DecodeError(
                f"pickle cannot decode {describe_payload(payload)}: {type(exc).__name__}: {exc}"
            ) from exc


_PLAIN_JSON = json.JSONDecoder()


def _json_decode(codec: str, payload: bytes, decoder: json.JSONDecoder = _PLAIN_JSON) -> Any:
    # What json.loads does, with a decoder built once: json.loads builds a new one per call
    # as soon as it is given an object_hook (about 2/3 of a small message's decoding time).
    try:
        text: Any = payload
        if isinstance(text, str):  # text from an isclib 1.x-style caller: json.loads checks it
            return json.loads(text, object_hook=decoder.object_hook)
        return decoder.decode(payload.decode(json.detect_encoding(payload), "surrogatepass"))
    except DecodeError:
        raise
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"{codec} cannot decode {describe_payload(payload)}: not UTF-8 text ({exc.reason} "
            f"at byte {exc.start})"
        ) from exc
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"{codec} cannot decode {describe_payload(payload)}: {exc.msg}: "
            f"line {exc.lineno} column {exc.colno} (char {exc.pos})"
        ) from exc
    except (TypeError, ValueError, RecursionError) as exc:
        raise DecodeError(
            f"{codec} cannot decode {describe_payload(payload)}: {type(exc).__name__}: {exc}"
        ) from exc


class JSONCodec(AbstractCodec):
    """Plain JSON: ``None``, bools, numbers, strings, lists and string-keyed dicts.

    Tuples arrive as lists and non-string dict keys as strings (JSON has neither).
    The bytes are those of isclib 1.x: ``json.dumps`` defaults, ASCII only.
    """

    content_type = "json"
    content_encoding = "utf-8"

    def encode(self, message: Any) -> bytes:
        """Encode ``message`` as ASCII JSON text."""
        try:
            return json.dumps(message).encode("ascii")
        except (TypeError, ValueError, RecursionError) as exc:
            raise EncodeError(
                f"json cannot encode this message: {exc}. Plain JSON carries only None, bool, "
                "int, float, str, list/tuple and dicts with string keys; use the typedjson codec "
                "for datetimes, UUIDs, bytes and decimals."
            ) from exc

    def decode(self, payload: bytes) -> Any:
        """Decode JSON text (UTF-8)."""
        return _json_decode(self.content_type, payload)


def _tag(kind: str, value: Any) -> dict[str, Any]:
    return {OBJECT_TYPE_KEY: kind, OBJECT_VALUE_KEY: value}


def _parse_datetime(text: str) -> datetime.datetime:
    # fromisoformat reads what isoformat writes on every supported Python; a trailing "Z"
    # (common from other producers) needs Python 3.11, so translate it.
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(text)


def _parse_binary(value: Any) -> bytes:
    if isinstance(value, list):
        return bytes(value)  # isclib 1.2: a list of ints
    if isinstance(value, str):
        return value.encode("utf-8")  # isclib 1.1: the bytes as UTF-8 text
    raise TypeError(f"binary value must be a list of ints, got {type(value).__name__}")


_DECODERS: dict[str, Any] = {
    "datetime": _parse_datetime,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "uuid": uuid.UUID,
    "binary": _parse_binary,
    "decimal": decimal.Decimal,
    "set": set,
    "frozenset": frozenset,
}


class TypedJSONCodec(AbstractCodec):
    """JSON that keeps datetimes (with time zones), dates, times, UUIDs, bytes, Decimals and sets.

    Such values travel tagged as ``{"__object_type": kind, "__object_value": value}``,
    wire-compatible with isclib 1.x for ``datetime`` (ISO 8601), ``uuid`` (32 hex digits) and
    ``binary`` (a list of byte values). The other kinds (``date``, ``time``, ``decimal``,
    ``set``, ``frozenset``) are isc 2 additions: isclib 1.x peers reject them with a codec
    error rather than misreading them.

    Tuples arrive as lists, exactly as in plain JSON: the message envelope itself is a tuple,
    and isclib 1.x peers expect arrays there. A dict whose keys include ``__object_type`` is
    refused on encoding, since it would be read back as a tagged value.
    """

    content_type = "typedjson"
    content_encoding = "utf-8"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(default=self._encode_object)
        self._decoder = json.JSONDecoder(object_hook=self._decode_object)

    @staticmethod
    def _encode_object(value: Any) -> Any:
        # datetime is a subclass of date: test it first.
        if isinstance(value, datetime.datetime):
            return _tag("datetime", value.isoformat())
        if isinstance(value, datetime.date):
            return _tag("date", value.isoformat())
        if isinstance(value, datetime.time):
            return _tag("time", value.isoformat())
        if isinstance(value, uuid.UUID):
            return _tag("uuid", value.hex)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return _tag("binary", list(bytes(value)))
        if isinstance(value, decimal.Decimal):
            return _tag("decimal", str(value))
        if isinstance(value, (set, frozenset)):
            if any(isinstance(item, tuple) for item in value):
                raise TypeError("typedjson sets cannot hold tuples (tuples arrive as lists)")
            return _tag("frozenset" if isinstance(value, frozenset) else "set", list(value))
        raise TypeError(f"typedjson cannot encode values of type {type(value).__qualname__}")

    def encode(self, message: Any) -> bytes:
        """Encode ``message`` as ASCII JSON text with tagged extended values."""
        try:
            text = self._encoder.encode(message)
        except (TypeError, ValueError, RecursionError) as exc:
            raise EncodeError(f"typedjson cannot encode this message: {exc}") from exc
        if OBJECT_TYPE_KEY in text:  # rare: only then look for user dicts using the key
            self._check_reserved_keys(message)
        return text.encode("ascii")

    @classmethod
    def _check_reserved_keys(cls, value: Any) -> None:
        stack: list[Any] = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                if OBJECT_TYPE_KEY in item:
                    raise EncodeError(
                        f"typedjson reserves the dict key {OBJECT_TYPE_KEY!r} for tagged values; "
                        "rename the key or use another codec"
                    )
                stack.extend(item.values())
            elif isinstance(item, (list, tuple)):
                stack.extend(item)

    @staticmethod
    def _decode_object(obj: dict[str, Any]) -> Any:
        if OBJECT_TYPE_KEY not in obj:
            return obj
        kind = obj[OBJECT_TYPE_KEY]
        if len(obj) != 2 or OBJECT_VALUE_KEY not in obj:
            raise DecodeError(
                f"typedjson tagged value must have exactly the keys {OBJECT_TYPE_KEY!r} and "
                f"{OBJECT_VALUE_KEY!r}, got {sorted(obj)}"
            )
        decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
        if decoder is None:
            raise DecodeError(
                f"typedjson does not know the object type {kind!r} "
                f"(known: {', '.join(sorted(_DECODERS))})"
            )
        try:
            return decoder(obj[OBJECT_VALUE_KEY])
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise DecodeError(
                f"typedjson cannot read {kind!r} value {obj[OBJECT_VALUE_KEY]!r:.60}: {exc}"
            ) from exc

    def decode(self, payload: bytes) -> Any:
        """Decode JSON text, turning tagged values back into their Python types."""
        return _json_decode(self.content_type, payload, self._decoder)


class CodecRegistry:
    """The codecs a peer accepts, looked up by content type.

    ``allow_pickle`` must be set to accept :class:`PickleCodec`: decoding pickle from
    untrusted senders executes their code.
    """

    def __init__(
        self, codecs: Iterable[AbstractCodec] | None = None, *, allow_pickle: bool = False
    ) -> None:
        self._codecs: dict[str, AbstractCodec] = {}
        self.allow_pickle = allow_pickle
        for codec in codecs if codecs is not None else (JSONCodec(), TypedJSONCodec()):
            self.register(codec)

    def register(self, codec: AbstractCodec) -> None:
        """Accept ``codec`` (replacing any codec with the same content type)."""
        if not isinstance(codec, AbstractCodec):
            raise TypeError(
                f"expected an AbstractCodec instance, got {codec!r}; pass e.g. JSONCodec(), "
                "not the class"
            )
        self._codecs[codec.content_type] = codec

    def get(self, content_type: str | None) -> AbstractCodec:
        """Return the accepted codec for ``content_type``.

        Raises :class:`UnknownCodecError` when none is registered and
        :class:`CodecNotAllowedError` for pickle when pickle is not allowed.
        """
        codec = self._codecs.get(content_type or "")
        if codec is None:
            raise UnknownCodecError(
                f"no codec for content type {content_type!r}; this peer accepts "
                f"{', '.join(self.names) or 'nothing'}"
            )
        if isinstance(codec, PickleCodec) and not self.allow_pickle:
            raise CodecNotAllowedError(
                "the pickle codec is refused by default because decoding it runs code chosen "
                "by the sender; enable it explicitly (Node(allow_pickle=True), "
                "isc run --allow-pickle) if every peer is trusted"
            )
        return codec

    def knows(self, content_type: str) -> bool:
        """True if a codec is registered for ``content_type``, accepted or not."""
        return content_type in self._codecs

    @property
    def names(self) -> list[str]:
        """The accepted content types, sorted (pickle only when allowed)."""
        return sorted(
            name
            for name, codec in self._codecs.items()
            if self.allow_pickle or not isinstance(codec, PickleCodec)
        )

    def __contains__(self, content_type: object) -> bool:
        return content_type in self.names

    def __iter__(self) -> Iterator[AbstractCodec]:
        return iter([self._codecs[name] for name in self.names])
