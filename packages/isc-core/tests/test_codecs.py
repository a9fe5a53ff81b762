"""The core codecs (pickle, json, typedjson) and the codec registry.

Property-based round trips, the exact isclib 1.x compatible bytes, and one test per kind of
bad input checking both the exception class and what its message says.
"""

from __future__ import annotations

import datetime
import decimal
import math
import pickle
import uuid
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from isc.core.codecs import (
    OBJECT_TYPE_KEY,
    PICKLE_PROTOCOL,
    AbstractCodec,
    CodecRegistry,
    JSONCodec,
    PickleCodec,
    TypedJSONCodec,
    describe_payload,
)
from isc.core.errors import (
    CodecException,
    CodecNotAllowedError,
    DecodeError,
    EncodeError,
    UnknownCodecError,
)

PROPERTIES = settings(max_examples=100, deadline=None)

# -- helpers -------------------------------------------------------------------------------


def normalize(value: Any) -> Any:
    """What a JSON-family codec (and msgpack) returns for ``value``.

    Tuples become lists and bytearray/memoryview become bytes, recursively through lists,
    tuples and dict values. Dict keys and set items are left alone: they must stay hashable.
    """
    if isinstance(value, (list, tuple)):
        return [normalize(item) for item in value]
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def assert_same(actual: Any, expected: Any) -> None:
    """Stricter than ``==``: types must match too (1 vs 1.0 vs True, list vs tuple), datetimes
    and times keep their UTC offset and microseconds, Decimals their exact digits."""
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
        assert math.copysign(1.0, actual) == math.copysign(1.0, expected)  # -0.0 stays -0.0
    else:
        assert actual == expected


def test_assert_same_is_strict() -> None:
    """The helper catches the differences the round-trip properties rely on it for."""
    assert_same([1, (2.0, "x")], [1, (2.0, "x")])
    utc = datetime.timezone.utc
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    noon_utc = datetime.datetime(2020, 1, 1, 12, tzinfo=utc)
    for actual, expected in [
        ([1], (1,)),
        (1, 1.0),
        (1, True),
        (0.0, -0.0),
        ({1: "a"}, {1.0: "a"}),
        ({1}, {True}),
        (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
        (noon_utc, noon_utc.astimezone(plus_one)),  # same instant, other offset
        ([b"a"], [bytearray(b"a")]),
    ]:
        with pytest.raises(AssertionError):
            assert_same(actual, expected)


def test_normalize() -> None:
    value = {"a": (1, [2, (3,)]), "b": bytearray(b"x"), (1, 2): frozenset({(1, 2)})}
    assert_same(
        normalize(value),
        {"a": [1, [2, [3]]], "b": b"x", (1, 2): frozenset({(1, 2)})},
    )


# -- strategies ----------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
)
#: Values plain JSON carries (tuples, which arrive as lists, included).
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(st.text(), children, max_size=5),
    ),
    max_leaves=8,
)

# Whole seconds: CPython's fromisoformat reads an offset under one second ("+00:00:00.000001")
# as UTC, so sub-second offsets (which no real time zone has) do not survive the ISO text.
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
extended_scalars = st.one_of(
    json_scalars,
    hashable_extended,
    st.binary(max_size=20).map(bytearray),
    st.sets(st.one_of(json_scalars, hashable_extended), max_size=5),
    st.frozensets(st.one_of(json_scalars, hashable_extended), max_size=5),
)
#: Values typed JSON carries: JSON plus datetimes, dates, times, UUIDs, bytes, Decimals, sets.
typedjson_values = st.recursive(
    extended_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(st.text().filter(lambda key: key != OBJECT_TYPE_KEY), children, max_size=5),
    ),
    max_leaves=8,
)

pickle_scalars = st.one_of(
    json_scalars,
    hashable_extended,
    st.complex_numbers(allow_nan=False),
    st.binary(max_size=20).map(bytearray),
)
hashable_pickle = st.recursive(
    st.one_of(json_scalars, hashable_extended),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(tuple), st.frozensets(children, max_size=3)
    ),
    max_leaves=6,
)
#: Picklable structures: tuples stay tuples, keys and set items may be tuples.
pickle_values = st.recursive(
    pickle_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(hashable_pickle, children, max_size=5),
        st.sets(hashable_pickle, max_size=5),
        st.frozensets(hashable_pickle, max_size=5),
    ),
    max_leaves=8,
)


# -- round trips ---------------------------------------------------------------------------


@PROPERTIES
@given(json_values)
def test_json_round_trip(value: Any) -> None:
    codec = JSONCodec()
    payload = codec.encode(value)
    assert isinstance(payload, bytes)
    payload.decode("ascii")  # isclib 1.x bytes: ASCII only
    assert_same(codec.decode(payload), normalize(value))


@PROPERTIES
@given(typedjson_values)
def test_typedjson_round_trip(value: Any) -> None:
    codec = TypedJSONCodec()
    payload = codec.encode(value)
    payload.decode("ascii")
    assert_same(codec.decode(payload), normalize(value))


@PROPERTIES
@given(json_values)
def test_typedjson_writes_plain_json_values_as_json_does(value: Any) -> None:
    plain = JSONCodec().encode(value)
    assume(OBJECT_TYPE_KEY.encode() not in plain)  # typedjson refuses dicts keyed with it
    assert TypedJSONCodec().encode(value) == plain


@PROPERTIES
@given(pickle_values)
def test_pickle_round_trip(value: Any) -> None:
    codec = PickleCodec()
    payload = codec.encode(value)
    assert payload[:2] == b"\x80\x02"  # protocol 2, as isclib 1.x
    assert_same(codec.decode(payload), value)


def test_json_turns_tuples_into_lists_and_int_keys_into_strings() -> None:
    codec = JSONCodec()
    assert_same(codec.decode(codec.encode(((1, 2), {1: (3,)}))), [[1, 2], {"1": [3]}])


def test_typedjson_memoryview_arrives_as_bytes() -> None:
    codec = TypedJSONCodec()
    assert_same(codec.decode(codec.encode(memoryview(b"\x00\x01"))), b"\x00\x01")


# -- exact bytes (isclib 1.x compatibility) ------------------------------------------------


def test_json_bytes_are_json_dumps_defaults_in_ascii() -> None:
    assert JSONCodec().encode(("a", 1, [None, True], {"k": 1.5})) == (
        b'["a", 1, [null, true], {"k": 1.5}]'
    )
    assert JSONCodec().encode("\u00e9\U0001f600") == b'"\\u00e9\\ud83d\\ude00"'


def test_typedjson_datetime_bytes() -> None:
    value = datetime.datetime(2018, 1, 24, 17, 59, 40, 123)
    assert TypedJSONCodec().encode(value) == (
        b'{"__object_type": "datetime", "__object_value": "2018-01-24T17:59:40.000123"}'
    )


def test_typedjson_aware_datetime_bytes() -> None:
    value = datetime.datetime(2018, 1, 24, 17, 59, 40, tzinfo=datetime.timezone.utc)
    assert TypedJSONCodec().encode(value) == (
        b'{"__object_type": "datetime", "__object_value": "2018-01-24T17:59:40+00:00"}'
    )


def test_typedjson_uuid_bytes_are_the_hex_form() -> None:
    value = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")
    assert TypedJSONCodec().encode(value) == (
        b'{"__object_type": "uuid", "__object_value": "123456789abcdef0123456789abcdef0"}'
    )


def test_typedjson_binary_bytes_are_a_list_of_ints() -> None:
    expected = b'{"__object_type": "binary", "__object_value": [0, 255]}'
    assert TypedJSONCodec().encode(b"\x00\xff") == expected
    assert TypedJSONCodec().encode(bytearray(b"\x00\xff")) == expected


def test_typedjson_isc2_kinds_bytes() -> None:
    codec = TypedJSONCodec()
    assert codec.encode(datetime.date(2020, 2, 29)) == (
        b'{"__object_type": "date", "__object_value": "2020-02-29"}'
    )
    assert codec.encode(datetime.time(1, 2, 3, 4)) == (
        b'{"__object_type": "time", "__object_value": "01:02:03.000004"}'
    )
    assert codec.encode(decimal.Decimal("-1.50E+3")) == (
        b'{"__object_type": "decimal", "__object_value": "-1.50E+3"}'
    )
    assert codec.encode(frozenset({7})) == (
        b'{"__object_type": "frozenset", "__object_value": [7]}'
    )


def test_typedjson_reads_isclib_1_1_binary_as_utf8_text() -> None:
    payload = b'{"__object_type": "binary", "__object_value": "a\\u00e9"}'
    assert_same(TypedJSONCodec().decode(payload), b"a\xc3\xa9")


def test_typedjson_reads_isclib_1_2_binary() -> None:
    payload = b'[{"__object_type": "binary", "__object_value": [0, 255]}]'
    assert_same(TypedJSONCodec().decode(payload), [b"\x00\xff"])


@pytest.mark.parametrize("zulu", ["Z", "z"])
def test_typedjson_reads_a_trailing_z_as_utc(zulu: str) -> None:
    text = "2018-01-24T17:59:40.000123" + zulu
    payload = f'{{"__object_type": "datetime", "__object_value": "{text}"}}'.encode()
    expected = datetime.datetime(2018, 1, 24, 17, 59, 40, 123, tzinfo=datetime.timezone.utc)
    assert_same(TypedJSONCodec().decode(payload), expected)


def test_typedjson_reads_the_dashed_uuid_form() -> None:
    payload = b'{"__object_type": "uuid", "__object_value": "12345678-9abc-def0-1234-56789abcdef0"}'
    assert TypedJSONCodec().decode(payload) == uuid.UUID("123456789abcdef0123456789abcdef0")


def test_pickle_uses_protocol_2() -> None:
    assert PICKLE_PROTOCOL == 2
    payload = PickleCodec().encode((1, "a"))
    assert payload == pickle.dumps((1, "a"), protocol=2)
    assert payload.startswith(b"\x80\x02")


def test_content_types_and_encodings() -> None:
    assert (PickleCodec.content_type, PickleCodec.content_encoding) == ("pickle", "binary")
    assert (JSONCodec.content_type, JSONCodec.content_encoding) == ("json", "utf-8")
    assert (TypedJSONCodec.content_type, TypedJSONCodec.content_encoding) == (
        "typedjson",
        "utf-8",
    )


# -- bad input: decoding -------------------------------------------------------------------


def test_json_refuses_text_that_is_not_json() -> None:
    with pytest.raises(DecodeError, match=r"json cannot decode 8 bytes .*Expecting value"):
        JSONCodec().decode(b"not json")


def test_json_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(DecodeError, match=r"not UTF-8 text"):
        JSONCodec().decode(b'"\xff\xfe"')


def test_json_refuses_a_truncated_payload() -> None:
    payload = JSONCodec().encode([1, 2, 3])[:-1]
    with pytest.raises(DecodeError, match=r"Expecting ',' delimiter"):
        JSONCodec().decode(payload)


def test_json_refuses_trailing_data() -> None:
    with pytest.raises(DecodeError, match=r"Extra data"):
        JSONCodec().decode(b"[1] [2]")


def test_typedjson_refuses_a_truncated_payload() -> None:
    payload = TypedJSONCodec().encode(uuid.UUID(int=1))[:-2]
    with pytest.raises(
        DecodeError, match=r"typedjson cannot decode .*Unterminated string starting at: line 1"
    ):
        TypedJSONCodec().decode(payload)


def test_typedjson_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(DecodeError, match=r"typedjson cannot decode .*not UTF-8 text"):
        TypedJSONCodec().decode(b'["\xc3"]')


def test_typedjson_refuses_an_unknown_object_type() -> None:
    payload = b'{"__object_type": "complex", "__object_value": [1, 2]}'
    with pytest.raises(DecodeError, match=r"does not know the object type 'complex' \(known: "):
        TypedJSONCodec().decode(payload)


def test_typedjson_refuses_a_tagged_dict_with_extra_keys() -> None:
    payload = b'{"__object_type": "uuid", "__object_value": "00", "extra": 1}'
    with pytest.raises(DecodeError, match=r"must have exactly the keys .*'extra'"):
        TypedJSONCodec().decode(payload)


def test_typedjson_refuses_a_tagged_dict_without_a_value() -> None:
    with pytest.raises(DecodeError, match=r"must have exactly the keys"):
        TypedJSONCodec().decode(b'{"__object_type": "uuid"}')


@pytest.mark.parametrize(
    ("kind", "value", "detail"),
    [
        ("datetime", '"not-a-date"', "Invalid isoformat string"),
        ("date", '"2020-02-30"', "day is out of range"),
        ("uuid", '"123"', "badly formed"),
        ("binary", "[256]", "range"),
        ("binary", "5", "must be a list of ints"),
        ("set", "[[1]]", "unhashable"),
        ("decimal", '"abc"', "ConversionSyntax"),
    ],
)
def test_typedjson_refuses_a_bad_tagged_value(kind: str, value: str, detail: str) -> None:
    payload = f'{{"__object_type": "{kind}", "__object_value": {value}}}'.encode()
    with pytest.raises(DecodeError, match=rf"cannot read '{kind}' value .*{detail}"):
        TypedJSONCodec().decode(payload)


def test_pickle_refuses_bytes_that_are_not_a_pickle() -> None:
    with pytest.raises(DecodeError, match=r"pickle cannot decode 12 bytes .*UnpicklingError"):
        PickleCodec().decode(b"not a pickle")


def test_pickle_refuses_a_truncated_payload() -> None:
    payload = PickleCodec().encode([1, 2, "abc"])[:-1]
    with pytest.raises(DecodeError, match=r"pickle cannot decode .*EOFError: Ran out of input"):
        PickleCodec().decode(payload)


def test_decode_error_previews_long_payloads() -> None:
    payload = b"x" * 100
    assert describe_payload(payload) == f"100 bytes starting {b'x' * 40!r}..."
    with pytest.raises(DecodeError) as info:
        JSONCodec().decode(payload)
    assert describe_payload(payload) in str(info.value)
    assert "x" * 41 not in str(info.value)


def test_describe_payload_short() -> None:
    assert describe_payload(b"ab") == "2 bytes starting b'ab'"


# -- bad input: encoding -------------------------------------------------------------------


def test_json_refuses_a_set() -> None:
    with pytest.raises(
        EncodeError, match=r"Object of type set is not JSON serializable.*typedjson"
    ):
        JSONCodec().encode({"values": {1, 2}})


def test_json_refuses_tuple_keys() -> None:
    with pytest.raises(EncodeError, match=r"keys must be str.*not tuple"):
        JSONCodec().encode({(1, 2): 3})


class Opaque:
    pass


def test_typedjson_refuses_an_arbitrary_object() -> None:
    with pytest.raises(EncodeError, match=r"typedjson cannot encode values of type Opaque"):
        TypedJSONCodec().encode([1, Opaque()])


def test_typedjson_refuses_the_reserved_key() -> None:
    with pytest.raises(EncodeError, match=r"reserves the dict key '__object_type'"):
        TypedJSONCodec().encode({"ok": [{OBJECT_TYPE_KEY: "datetime", "x": 1}]})


def test_typedjson_allows_the_reserved_key_as_a_value() -> None:
    codec = TypedJSONCodec()
    assert codec.decode(codec.encode({"k": OBJECT_TYPE_KEY})) == {"k": OBJECT_TYPE_KEY}


def test_typedjson_refuses_sets_of_tuples() -> None:
    with pytest.raises(EncodeError, match=r"sets cannot hold tuples"):
        TypedJSONCodec().encode({(1, 2), (3, 4)})


def test_typedjson_refuses_self_reference() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match=r"Circular reference"):
        TypedJSONCodec().encode(loop)


def test_pickle_refuses_a_lambda() -> None:
    with pytest.raises(EncodeError, match=r"pickle cannot encode function: "):
        PickleCodec().encode(lambda: None)


def test_codec_errors_are_codec_exceptions() -> None:
    assert issubclass(EncodeError, CodecException)
    assert issubclass(DecodeError, CodecException)


# -- the registry --------------------------------------------------------------------------


def test_default_registry_accepts_json_and_typedjson_only() -> None:
    registry = CodecRegistry()
    assert registry.names == ["json", "typedjson"]
    assert isinstance(registry.get("json"), JSONCodec)
    assert isinstance(registry.get("typedjson"), TypedJSONCodec)
    assert "pickle" not in registry
    assert [codec.content_type for codec in registry] == ["json", "typedjson"]
    with pytest.raises(UnknownCodecError, match=r"accepts json, typedjson"):
        registry.get("pickle")


def test_registered_pickle_is_refused_unless_allowed() -> None:
    registry = CodecRegistry([JSONCodec(), PickleCodec()])
    assert registry.names == ["json"]
    assert "pickle" not in registry
    with pytest.raises(CodecNotAllowedError, match=r"allow_pickle=True"):
        registry.get("pickle")


def test_pickle_is_accepted_when_allowed() -> None:
    registry = CodecRegistry([JSONCodec(), PickleCodec()], allow_pickle=True)
    assert registry.names == ["json", "pickle"]
    assert "pickle" in registry
    assert isinstance(registry.get("pickle"), PickleCodec)


def test_an_unknown_content_type_lists_the_accepted_ones() -> None:
    registry = CodecRegistry()
    with pytest.raises(UnknownCodecError, match=r"'yaml'; this peer accepts json, typedjson"):
        registry.get("yaml")
    with pytest.raises(UnknownCodecError, match=r"None; this peer accepts json, typedjson"):
        registry.get(None)


def test_an_empty_registry_says_it_accepts_nothing() -> None:
    with pytest.raises(UnknownCodecError, match=r"accepts nothing"):
        CodecRegistry([]).get("json")


def test_registering_a_codec_class_is_a_type_error() -> None:
    registry = CodecRegistry()
    with pytest.raises(TypeError, match=r"expected an AbstractCodec instance.*not the class"):
        registry.register(JSONCodec)  # type: ignore[arg-type]


def test_registering_replaces_the_codec_of_the_same_content_type() -> None:
    replacement = JSONCodec()
    registry = CodecRegistry()
    registry.register(replacement)
    assert registry.get("json") is replacement


def test_a_custom_codec_can_be_registered() -> None:
    class Upper(AbstractCodec):
        content_type = "upper"

        def encode(self, message: Any) -> bytes:
            return str(message).upper().encode()

        def decode(self, payload: bytes) -> Any:
            return payload.decode()

    registry = CodecRegistry([Upper()])
    codec = registry.get("upper")
    assert codec.decode(codec.encode("abc")) == "ABC"
    assert repr(codec) == "Upper()"


def test_registry_knows_refused_codecs_but_does_not_name_them() -> None:
    registry = CodecRegistry([JSONCodec(), PickleCodec()])
    assert registry.knows("pickle")
    assert "pickle" not in registry.names
    assert not registry.knows("msgpack")
