"""The MessagePack codec: round trips, the wire form of every extension type, bad input, and
what happens without the optional ``msgpack`` package."""

from __future__ import annotations

import datetime
import decimal
import importlib
import math
import struct
import sys
import threading
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isc
from isc.codecs import MsgpackCodec
from isc.codecs._msgpack import (
    EXT_DATE,
    EXT_DATETIME,
    EXT_DECIMAL,
    EXT_FROZENSET,
    EXT_SET,
    EXT_TIME,
    EXT_UUID,
)
from isc.core.errors import CodecException, DecodeError, EncodeError

PROPERTIES = settings(max_examples=100, deadline=None)


@pytest.fixture
def codec() -> MsgpackCodec:
    return MsgpackCodec()


# -- helpers (the same rules as packages/isc-core/tests/test_codecs.py) ----------------------


def normalize(value: Any) -> Any:
    """What msgpack returns for ``value``: tuples become lists and bytearray/memoryview bytes,
    through lists, tuples and dict values. Keys and set items stay (tuples arrive as tuples)."""
    if isinstance(value, (list, tuple)):
        return [normalize(item) for item in value]
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def assert_same(actual: Any, expected: Any) -> None:
    """``==`` plus equal types all the way down, offsets of datetimes/times, Decimal digits."""
    assert type(actual) is type(expected), f"{actual!r} is not a {type(expected).__name__}"
    if isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), (actual, expected)
        for got, want in zip(actual, expected):
            assert_same(got, want)
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys(), (actual, expected)
        actual_keys = {key: key for key in actual}
        for key, want in expected.items():
            assert_same(actual_keys[key], key)
            assert_same(actual[key], want)
    elif isinstance(expected, (set, frozenset)):
        assert actual == expected
        actual_items = {item: item for item in actual}
        for item in expected:
            assert_same(actual_items[item], item)
    elif isinstance(expected, (datetime.datetime, datetime.time)):
        assert actual == expected
        assert actual.isoformat() == expected.isoformat()
        assert actual.utcoffset() == expected.utcoffset()
    elif isinstance(expected, decimal.Decimal):
        assert str(actual) == str(expected)
    elif isinstance(expected, float):
        assert actual == expected
        assert math.copysign(1.0, actual) == math.copysign(1.0, expected)
    else:
        assert actual == expected


def test_assert_same_is_strict() -> None:
    for actual, expected in [
        ([1], (1,)),
        (1, 1.0),
        (1, True),
        (-0.0, 0.0),
        ({(1,): 0}, {(True,): 0}),
        (frozenset({1}), {1}),
        (datetime.time(1), datetime.time(1, tzinfo=datetime.timezone.utc)),
    ]:
        with pytest.raises(AssertionError):
            assert_same(actual, expected)


# -- strategies ----------------------------------------------------------------------------

msgpack_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = st.one_of(st.none(), st.booleans(), msgpack_ints, st.floats(allow_nan=False), st.text())
# Whole-second offsets: see fixed_offsets in packages/isc-core/tests/test_codecs.py.
fixed_offsets = st.builds(
    lambda seconds: datetime.timezone(datetime.timedelta(seconds=seconds)),
    st.integers(min_value=-86399, max_value=86399),
)
hashable_extended = st.one_of(
    st.datetimes(),
    st.datetimes(timezones=fixed_offsets),
    st.dates(),
    st.times(),
    st.times(timezones=fixed_offsets),
    st.uuids(),
    st.binary(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False),
)
hashable = st.one_of(scalars, hashable_extended)
#: Keys and set items: tuples (nested too) arrive as tuples, where a list cannot go.
keys = st.one_of(
    hashable,
    st.tuples(msgpack_ints, st.text()),
    st.tuples(st.tuples(hashable), st.none()),
    st.frozensets(hashable, max_size=3),
)
leaves = st.one_of(
    hashable,
    st.binary(max_size=20).map(bytearray),
    st.binary(max_size=20).map(lambda data: memoryview(data)),
    st.sets(keys, max_size=5),
    st.frozensets(keys, max_size=5),
)
msgpack_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=8,
)


# -- round trips ---------------------------------------------------------------------------


@PROPERTIES
@given(msgpack_values)
def test_round_trip(value: Any) -> None:
    codec = MsgpackCodec()
    payload = codec.encode(value)
    assert isinstance(payload, bytes)
    assert_same(codec.decode(payload), normalize(value))


@PROPERTIES
@given(msgpack_values)
def test_encoding_is_deterministic_per_value(value: Any) -> None:
    codec = MsgpackCodec()
    payload = codec.encode(value)
    assert MsgpackCodec().encode(value) == payload
    assert codec.encode(codec.decode(payload)) == payload or _has_unordered(value)


def _has_unordered(value: Any) -> bool:
    """Sets re-encode in hash order, which may differ after a round trip."""
    if isinstance(value, (set, frozenset)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_unordered(item) for item in value)
    if isinstance(value, dict):
        return any(_has_unordered(k) or _has_unordered(v) for k, v in value.items())
    return False


def test_extended_values_round_trip(codec: MsgpackCodec) -> None:
    india = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    value = {
        "naive": datetime.datetime(2018, 1, 24, 17, 59, 40, 123),
        "aware": datetime.datetime(2018, 1, 24, 17, 59, 40, 123, tzinfo=india),
        "date": datetime.date(2020, 2, 29),
        "time": datetime.time(23, 59, 59, 999999, tzinfo=india),
        "uuid": uuid.UUID("12345678-9abc-def0-1234-56789abcdef0"),
        "bytes": b"\x00\xff",
        "decimal": decimal.Decimal("-1.50E+3"),
        "set": {1, "a", (2, (3,))},
        "frozenset": frozenset({frozenset({1}), b"x"}),
        "tuple": (1, (2, [3])),
        1: "int key",
        (1, 2): "tuple key",
        uuid.UUID(int=5): "uuid key",
    }
    expected = {**value, "tuple": [1, [2, [3]]]}
    assert_same(codec.decode(codec.encode(value)), expected)


def test_int_keys_stay_ints_unlike_json(codec: MsgpackCodec) -> None:
    assert_same(codec.decode(codec.encode({1: "a", -2: "b"})), {1: "a", -2: "b"})


def test_memoryview_and_bytearray_arrive_as_bytes(codec: MsgpackCodec) -> None:
    value = [memoryview(b"ab"), bytearray(b"cd")]
    assert_same(codec.decode(codec.encode(value)), [b"ab", b"cd"])


def test_the_64_bit_limits_round_trip(codec: MsgpackCodec) -> None:
    value = [2**64 - 1, -(2**63), 0, -1]
    assert_same(codec.decode(codec.encode(value)), value)


def test_subclasses_of_extended_types_are_encoded_as_the_base_type(codec: MsgpackCodec) -> None:
    class MyDate(datetime.date):
        pass

    assert_same(codec.decode(codec.encode(MyDate(2020, 1, 2))), datetime.date(2020, 1, 2))


def test_nan_float_is_carried(codec: MsgpackCodec) -> None:
    assert math.isnan(codec.decode(codec.encode(float("nan"))))


# -- the wire form -------------------------------------------------------------------------


def test_extension_codes_are_fixed() -> None:
    """These numbers are part of the wire protocol: changing one breaks every peer."""
    assert (EXT_DATETIME, EXT_DATE, EXT_TIME, EXT_UUID, EXT_DECIMAL, EXT_SET, EXT_FROZENSET) == (
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    )


def test_content_type_and_encoding(codec: MsgpackCodec) -> None:
    assert (codec.content_type, codec.content_encoding) == ("msgpack", "binary")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b"\xc0"),
        ((1, "a"), b"\x92\x01\xa1a"),
        ({1: None}, b"\x81\x01\xc0"),
        (b"\x00\xff", b"\xc4\x02\x00\xff"),  # bin 8, not str
        (bytearray(b"\x00"), b"\xc4\x01\x00"),
        ("\u00e9", b"\xa2\xc3\xa9"),  # str, UTF-8
        (1.5, b"\xcb" + struct.pack(">d", 1.5)),  # always a double
        (
            datetime.datetime(2018, 1, 24, 17, 59, 40, 123),
            b"\xc7\x1a\x01" + b"2018-01-24T17:59:40.000123",  # ext 8, 26 bytes, code 1
        ),
        (
            datetime.datetime(2018, 1, 24, 17, 59, 40, tzinfo=datetime.timezone.utc),
            b"\xc7\x19\x01" + b"2018-01-24T17:59:40+00:00",
        ),
        (datetime.date(2020, 2, 29), b"\xc7\x0a\x02" + b"2020-02-29"),
        (datetime.time(1, 2, 3, 4), b"\xc7\x0f\x03" + b"01:02:03.000004"),
        (
            uuid.UUID("12345678-9abc-def0-1234-56789abcdef0"),  # fixext 16, code 4
            b"\xd8\x04" + bytes.fromhex("123456789abcdef0123456789abcdef0"),
        ),
        (decimal.Decimal("-1.50E+3"), b"\xd7\x05" + b"-1.50E+3"),  # fixext 8, code 5
        ({7}, b"\xd5\x06\x91\x07"),  # fixext 2, code 6, the array [7]
        (frozenset({7}), b"\xd5\x07\x91\x07"),
    ],
    ids=repr,
)
def test_wire_bytes(codec: MsgpackCodec, value: Any, expected: bytes) -> None:
    assert codec.encode(value) == expected
    assert_same(codec.decode(expected), normalize(value))


def test_reads_the_standard_timestamp_extension_as_utc(codec: MsgpackCodec) -> None:
    payload = b"\xd6\xff" + struct.pack(">I", 1516816780)  # fixext 4, code -1: seconds
    expected = datetime.datetime(2018, 1, 24, 17, 59, 40, tzinfo=datetime.timezone.utc)
    assert_same(codec.decode(payload), expected)


# -- bad input: decoding -------------------------------------------------------------------


def test_refuses_bytes_that_are_not_msgpack(codec: MsgpackCodec) -> None:
    with pytest.raises(DecodeError, match=r"msgpack cannot decode 4 bytes .*not MessagePack"):
        codec.decode(b"\xc1abc")


def test_refuses_strings_that_are_not_utf8(codec: MsgpackCodec) -> None:
    with pytest.raises(DecodeError, match=r"a string is not UTF-8"):
        codec.decode(b"\xa2\xff\xfe")


def test_refuses_a_truncated_payload(codec: MsgpackCodec) -> None:
    payload = codec.encode([1, 2, "abc"])[:-1]
    with pytest.raises(DecodeError, match=r"msgpack cannot decode 6 bytes .*truncated payload"):
        codec.decode(payload)


def test_refuses_an_empty_payload(codec: MsgpackCodec) -> None:
    with pytest.raises(DecodeError, match=r"0 bytes starting b'': empty payload"):
        codec.decode(b"")


def test_refuses_trailing_data(codec: MsgpackCodec) -> None:
    with pytest.raises(DecodeError, match=r"2 bytes of trailing data after the message"):
        codec.decode(codec.encode([1]) + b"\x01\x02")


def test_refuses_an_unknown_extension_code(codec: MsgpackCodec) -> None:
    with pytest.raises(DecodeError, match=r"unknown extension type code 42 \(known: 1 \(datetime"):
        codec.decode(b"\xd4\x2a\x00")  # fixext 1, code 42


@pytest.mark.parametrize(
    ("code", "data", "detail"),
    [
        (EXT_DATETIME, b"not-a-date", r"bad datetime value \(extension type 1\) b'not-a-date': "),
        (EXT_DATETIME, b"\xff", r"bad datetime value .*can't decode byte 0xff"),
        (EXT_DATE, b"2020-02-30", r"bad date value .*day is out of range"),
        (EXT_TIME, b"25:00", r"bad time value .*hour must be in"),
        (EXT_UUID, b"abc", r"bad uuid value .*16"),
        (EXT_DECIMAL, b"abc", r"bad decimal value .*ConversionSyntax"),
        (EXT_SET, b"\x05", r"bad set value .*expected an array of items, got int"),
        (EXT_SET, b"\x91\x80", r"bad set value .*unhashable type: 'dict'"),
        (EXT_FROZENSET, b"\x91", r"bad frozenset value .*incomplete input"),
    ],
)
def test_refuses_a_bad_extension_value(
    codec: MsgpackCodec, code: int, data: bytes, detail: str
) -> None:
    payload = b"\xc7" + bytes([len(data), code]) + data  # ext 8
    with pytest.raises(
        DecodeError, match=rf"msgpack cannot decode {len(payload)} bytes .*{detail}"
    ):
        codec.decode(payload)


def test_refuses_a_map_key_that_cannot_be_hashed(codec: MsgpackCodec) -> None:
    with pytest.raises(DecodeError, match=r"a map key or set item is not hashable"):
        codec.decode(b"\x81\x80\x01")  # {{}: 1}


def test_refuses_absurd_nesting(codec: MsgpackCodec) -> None:
    with pytest.raises(DecodeError, match=r"nested too deeply"):
        codec.decode(b"\x91" * 5000 + b"\xc0")


def test_refuses_a_payload_that_is_not_bytes(codec: MsgpackCodec) -> None:
    with pytest.raises(DecodeError, match=r"cannot decode a str, not bytes"):
        codec.decode("abc")  # type: ignore[arg-type]


# -- bad input: encoding -------------------------------------------------------------------


class Opaque:
    pass


def test_refuses_an_arbitrary_object(codec: MsgpackCodec) -> None:
    with pytest.raises(EncodeError, match=r"values of type Opaque are not supported"):
        codec.encode({"a": [Opaque()]})


def test_refuses_an_arbitrary_object_in_a_set(codec: MsgpackCodec) -> None:
    with pytest.raises(EncodeError, match=r"values of type Opaque are not supported"):
        codec.encode({Opaque()})


@pytest.mark.parametrize(
    ("value", "detail"),
    [(2**64, "an int of 65 bits is"), (-(2**63) - 1, r"an int of 64 bits \(negative\) is")],
)
def test_refuses_ints_beyond_64_bits(codec: MsgpackCodec, value: int, detail: str) -> None:
    with pytest.raises(EncodeError, match=rf"{detail} outside the range MessagePack carries"):
        codec.encode([value])


def test_refuses_self_reference(codec: MsgpackCodec) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match=r"cannot encode this message: .*recursion"):
        codec.encode(loop)


def test_refuses_a_lone_surrogate(codec: MsgpackCodec) -> None:
    with pytest.raises(EncodeError, match=r"surrogate"):
        codec.encode("\ud800")


def test_refuses_a_non_contiguous_memoryview(codec: MsgpackCodec) -> None:
    with pytest.raises(EncodeError, match=r"contiguous"):
        codec.encode(memoryview(b"abcd")[::2])


def test_a_failed_encode_leaves_no_bytes_behind(codec: MsgpackCodec) -> None:
    with pytest.raises(EncodeError):
        codec.encode(["x" * 100, Opaque()])
    assert codec.encode([2]) == b"\x91\x02"


# -- threads -------------------------------------------------------------------------------


def test_one_codec_is_safe_to_share_between_threads() -> None:
    """Each thread packs in its own buffer; sets call back into Python mid-pack, where a
    thread switch (forced often here) would interleave writes to a shared buffer."""
    codec = MsgpackCodec()
    messages = [[i, {i, i + 1}, "x" * i, datetime.date(2020, 1, 1 + i % 28)] for i in range(8)]
    expected = [MsgpackCodec().encode(message) for message in messages]
    failures: list[str] = []

    def work(offset: int) -> None:
        for round_ in range(300):
            index = (offset + round_) % len(messages)
            if codec.encode(messages[index]) != expected[index]:
                failures.append(f"thread {offset} round {round_}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []


# -- without msgpack -----------------------------------------------------------------------

INSTALL_HINT = r'pip install "isc-codecs\[msgpack\]"'


def test_constructor_without_msgpack_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "msgpack", None)  # makes `import msgpack` fail
    with pytest.raises(CodecException, match=INSTALL_HINT) as info:
        MsgpackCodec()
    assert info.type is CodecException
    assert isinstance(info.value.__cause__, ImportError)


def test_isc_codecs_imports_without_msgpack(monkeypatch: pytest.MonkeyPatch) -> None:
    original = sys.modules["isc.codecs"]
    monkeypatch.setitem(sys.modules, "msgpack", None)
    for name in [n for n in sys.modules if n == "isc.codecs" or n.startswith("isc.codecs.")]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    monkeypatch.setattr(isc, "codecs", original)  # the re-import rebinds it; restore it too

    fresh = importlib.import_module("isc.codecs")

    assert fresh is not original
    assert "msgpack" in fresh.CODECS
    assert fresh.get_codec("json").decode(b"[1]") == [1]
    with pytest.raises(CodecException, match=INSTALL_HINT) as info:
        fresh.get_codec("msgpack")
    assert info.type is CodecException
