"""The MessagePack codec: compact, fast, and with the extended types of typed JSON.

Needs the optional ``msgpack`` package (``pip install "isc-codecs[msgpack]"``). Importing
this module never needs it: only creating a :class:`MsgpackCodec` does.

Plain values use MessagePack's own types: nil, bool, int (64-bit: ``-2**63`` to
``2**64 - 1``), float (double), str (UTF-8), bin (``bytes``; ``bytearray`` and ``memoryview``
are sent as ``bytes``), array (``list``; tuples arrive as lists, as in typed JSON) and map
(``dict``). Map keys may be any of these hashable values, not only strings: int keys stay ints
(unlike JSON). A key that was a tuple arrives as a tuple, since a list cannot be a key.

The extended types travel as MessagePack extension values. Their codes are part of the wire
protocol and must never change:

====  ===========  =================================================================
code  Python type  extension payload
====  ===========  =================================================================
1     datetime     ``isoformat()`` text, UTF-8 (offset kept when aware, microseconds kept)
2     date         ``isoformat()`` text, UTF-8 (``YYYY-MM-DD``)
3     time         ``isoformat()`` text, UTF-8 (offset kept when aware)
4     UUID         the 16 bytes of ``UUID.bytes`` (big-endian)
5     Decimal      ``str()`` text, ASCII (``NaN``, ``Infinity`` and exponents included)
6     set          a MessagePack array of the items
7     frozenset    a MessagePack array of the items
====  ===========  =================================================================

isc never writes MessagePack's standard timestamp extension (code -1) since it cannot carry a
naive datetime or a UTC offset; other producers may, so it decodes to an aware UTC datetime.
Any other extension code is refused with :class:`~isc.core.errors.DecodeError`.
Set items that were tuples arrive as tuples, like map keys.
"""

from __future__ import annotations

import datetime
import decimal
import threading
import uuid
from collections.abc import Iterable
from typing import Any, Callable

from isc.core.codecs import AbstractCodec, describe_payload
from isc.core.errors import CodecException, DecodeError, EncodeError

__all__ = [
    "MsgpackCodec",
    "EXT_DATETIME",
    "EXT_DATE",
    "EXT_TIME",
    "EXT_UUID",
    "EXT_DECIMAL",
    "EXT_SET",
    "EXT_FROZENSET",
]

EXT_DATETIME = 1
EXT_DATE = 2
EXT_TIME = 3
EXT_UUID = 4
EXT_DECIMAL = 5
EXT_SET = 6
EXT_FROZENSET = 7

_EXT_NAMES = {
    EXT_DATETIME: "datetime",
    EXT_DATE: "date",
    EXT_TIME: "time",
    EXT_UUID: "uuid",
    EXT_DECIMAL: "decimal",
    EXT_SET: "set",
    EXT_FROZENSET: "frozenset",
}
_KNOWN_EXTS = ", ".join(f"{code} ({name})" for code, name in _EXT_NAMES.items())

_INSTALL_HINT = 'pip install "isc-codecs[msgpack]"'


def _import_msgpack() -> Any:
    """Return the ``msgpack`` module, or raise :class:`CodecException` saying how to get it."""
    try:
        import msgpack
    except ImportError as exc:
        raise CodecException(
            f"the msgpack codec needs the msgpack package, which is not installed: {_INSTALL_HINT}"
        ) from exc
    return msgpack


class _BadExtension(ValueError):
    """An extension value that cannot be decoded (raised from inside the unpacker)."""


def _freeze(value: Any) -> Any:
    """Turn decoded arrays back into tuples, where a hashable value is needed."""
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def _freeze_keys(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
    return {_freeze(key): value for key, value in pairs}


def _text(data: bytes) -> str:
    return data.decode("utf-8")


class MsgpackCodec(AbstractCodec):
    """MessagePack with the extended types of typed JSON (needs ``isc-codecs[msgpack]``).

    Carries ``None``, bools, ints (64-bit), floats, strings, bytes, lists and dicts natively,
    plus datetimes (naive or aware, microseconds kept), dates, times, UUIDs, Decimals, sets and
    frozensets as extension values (codes in the module docstring). Tuples arrive as lists, as
    in typed JSON, except as dict keys and set items, where they arrive as tuples. Dict keys
    need not be strings (the unpacker runs with ``strict_map_key=False``): int keys stay ints.

    Instances are safe to share between threads. Creating one raises
    :class:`~isc.core.errors.CodecException` when ``msgpack`` is not installed.
    """

    content_type = "msgpack"
    content_encoding = "binary"

    def __init__(self) -> None:
        msgpack = _import_msgpack()
        self._msgpack = msgpack
        self._ext_type = msgpack.ExtType
        self._unpackb: Callable[..., Any] = msgpack.unpackb
        self._packb: Callable[..., bytes] = msgpack.packb
        self._packer_options: dict[str, Any] = {
            "default": self._encode_extended,
            "use_bin_type": True,
            "datetime": False,  # datetimes go through _encode_extended, keeping tzinfo
            "autoreset": True,
        }
        self._unpack_options: dict[str, Any] = {
            "raw": False,
            "strict_map_key": False,  # keep int (and other hashable) keys
            "ext_hook": self._decode_extended,
            "timestamp": 3,  # code -1 from other producers: aware UTC datetime
        }
        # Only used when a map key turned out to be an array (a tuple on the sending side).
        self._unpack_options_frozen_keys = {
            **self._unpack_options,
            "object_pairs_hook": _freeze_keys,
        }
        self._ext_decoders: dict[int, Callable[[bytes], Any]] = {
            EXT_DATETIME: lambda data: datetime.datetime.fromisoformat(_text(data)),
            EXT_DATE: lambda data: datetime.date.fromisoformat(_text(data)),
            EXT_TIME: lambda data: datetime.time.fromisoformat(_text(data)),
            EXT_UUID: lambda data: uuid.UUID(bytes=data),
            EXT_DECIMAL: lambda data: decimal.Decimal(data.decode("ascii")),
            EXT_SET: lambda data: self._decode_items(data, set),
            EXT_FROZENSET: lambda data: self._decode_items(data, frozenset),
        }
        # A Packer reuses its buffer, so each thread gets its own.
        self._local = threading.local()

    # -- encoding --------------------------------------------------------------------------

    def _encode_extended(self, value: Any) -> Any:
        """The Packer's ``default``: called only for values MessagePack has no type for."""
        # datetime is a subclass of date: test it first.
        if isinstance(value, datetime.datetime):
            return self._ext_type(EXT_DATETIME, value.isoformat().encode("utf-8"))
        if isinstance(value, datetime.date):
            return self._ext_type(EXT_DATE, value.isoformat().encode("utf-8"))
        if isinstance(value, datetime.time):
            return self._ext_type(EXT_TIME, value.isoformat().encode("utf-8"))
        if isinstance(value, uuid.UUID):
            return self._ext_type(EXT_UUID, value.bytes)
        if isinstance(value, decimal.Decimal):
            return self._ext_type(EXT_DECIMAL, str(value).encode("ascii"))
        if isinstance(value, (set, frozenset)):
            code = EXT_FROZENSET if isinstance(value, frozenset) else EXT_SET
            # A fresh Packer: the calling one is in the middle of packing.
            return self._ext_type(code, self._packb(list(value), **self._packer_options))
        if isinstance(value, int):  # the Packer hands over ints it has no format for
            raise OverflowError(
                f"an int of {value.bit_length()} bits{' (negative)' if value < 0 else ''} is "
                "outside the range MessagePack carries (-2**63 to 2**64 - 1)"
            )
        raise TypeError(
            f"values of type {type(value).__qualname__} are not supported (MessagePack carries "
            "None, bool, int, float, str, bytes, list, tuple, dict, datetime, date, time, UUID, "
            "Decimal, set and frozenset)"
        )

    def encode(self, message: Any) -> bytes:
        """Encode ``message`` as MessagePack."""
        try:
            packer = self._local.packer
        except AttributeError:
            packer = self._local.packer = self._msgpack.Packer(**self._packer_options)
        try:
            return packer.pack(message)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError, BufferError, RecursionError) as exc:
            raise EncodeError(f"msgpack cannot encode this message: {exc}") from exc

    # -- decoding --------------------------------------------------------------------------

    def _decode_extended(self, code: int, data: bytes) -> Any:
        """The unpacker's ``ext_hook``."""
        decoder = self._ext_decoders.get(code)
        if decoder is None:
            raise _BadExtension(f"unknown extension type code {code} (known: {_KNOWN_EXTS})")
        try:
            return decoder(data)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise _BadExtension(
                f"bad {_EXT_NAMES[code]} value (extension type {code}) {data!r:.60}: {exc}"
            ) from exc

    def _decode_items(self, data: bytes, factory: Callable[[Any], Any]) -> Any:
        items = self._unpackb(data, **self._unpack_options)
        if not isinstance(items, list):
            raise TypeError(f"expected an array of items, got {type(items).__name__}")
        try:
            return factory(items)
        except TypeError:  # an item was a tuple on the sending side
            return factory([_freeze(item) for item in items])

    def decode(self, payload: bytes) -> Any:
        """Decode a MessagePack payload holding exactly one value."""
        try:
            return self._unpackb(payload, **self._unpack_options)
        except TypeError as exc:
            first_error: Exception = exc  # maybe an array used as a map key: retry below
        except Exception as exc:
            raise DecodeError(self._describe_error(payload, exc)) from exc
        try:
            return self._unpackb(payload, **self._unpack_options_frozen_keys)
        except Exception as exc:
            raise DecodeError(self._describe_error(payload, exc)) from first_error

    def _describe_error(self, payload: Any, exc: Exception) -> str:
        msgpack = self._msgpack
        if isinstance(exc, _BadExtension):
            reason = str(exc)
        elif isinstance(exc, msgpack.ExtraData):
            reason = f"{len(exc.extra)} bytes of trailing data after the message"
        elif isinstance(exc, msgpack.FormatError):
            reason = "not MessagePack (a byte that starts no MessagePack value)"
        elif isinstance(exc, msgpack.StackError):
            reason = "nested too deeply"
        elif isinstance(exc, UnicodeDecodeError):
            reason = f"a string is not UTF-8 ({exc.reason})"
        elif type(exc) is ValueError and "incomplete" in str(exc):
            reason = "empty payload" if not payload else "truncated payload (incomplete input)"
        elif isinstance(exc, TypeError) and "unhashable" in str(exc):
            reason = f"a map key or set item is not hashable ({exc})"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        try:
            preview = describe_payload(payload)
        except TypeError:
            preview = f"a {type(payload).__name__}, not bytes"
        return f"msgpack cannot decode {preview}: {reason}"
