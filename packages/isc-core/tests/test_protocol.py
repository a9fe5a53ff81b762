"""Message types: encoding, decoding, shapes, headers and compatibility rules."""

from __future__ import annotations

import pickle
import uuid
from typing import Any

import pytest

from isc.core import (
    PROTOCOL_VERSION,
    AbstractCodec,
    DecodeError,
    EncodeError,
    Envelope,
    Headers,
    JSONCodec,
    MalformedMessageError,
    Notification,
    PickleCodec,
    RemoteException,
    Reply,
    Request,
    TypedJSONCodec,
    exception_type_name,
)
from isc.core.protocol import MAX_ERROR_CHAIN

JSON = JSONCodec()


def envelope_of(body: Any, codec: AbstractCodec = JSON, **props: Any) -> Envelope:
    """An envelope whose body is ``body`` encoded with ``codec`` (no message-type checks)."""
    return Envelope(body=codec.encode(body), content_type=codec.content_type, **props)


class TestRequest:
    def test_round_trip_keeps_every_field(self) -> None:
        request = Request("add", (2, 3), {"x": 1}, reply_to="response-1", deadline=1700000000.25)
        envelope = request.encode(JSON)
        assert envelope.content_type == "json"
        assert envelope.content_encoding == "utf-8"
        assert envelope.correlation_id == request.correlation_id
        assert envelope.reply_to == "response-1"
        assert envelope.headers[Headers.PROTOCOL] == PROTOCOL_VERSION
        assert envelope.headers[Headers.DEADLINE] == 1700000000250
        decoded = Request.decode(envelope, JSON)
        assert (decoded.method, decoded.args, decoded.kwargs) == ("add", (2, 3), {"x": 1})
        assert decoded.correlation_id == request.correlation_id
        assert decoded.reply_to == "response-1"
        assert decoded.deadline == pytest.approx(1700000000.25)

    def test_correlation_ids_are_unique_uuid4_strings(self) -> None:
        ids = {Request("m").correlation_id for _ in range(10_000)}
        assert len(ids) == 10_000
        assert all(len(i) == 36 and str(uuid.UUID(i)) == i for i in ids)
        assert {uuid.UUID(i).version for i in ids} == {4}

    def test_a_legacy_request_has_no_deadline(self) -> None:
        decoded = Request.decode(envelope_of(["m", [], {}], correlation_id="c"), JSON)
        assert decoded.deadline is None
        assert decoded.correlation_id == "c"

    def test_pickle_keeps_tuples_and_uses_binary_encoding(self) -> None:
        envelope = Request("m", ((1, 2),), {}).encode(PickleCodec())
        assert envelope.content_encoding == "binary"
        assert Request.decode(envelope, PickleCodec()).args == ((1, 2),)

    @pytest.mark.parametrize(
        ("body", "complaint"),
        [
            ({"method": "m"}, "got dict"),
            (["m", []], "got list"),
            (["m", [], {}, 1], "got list"),
            ([1, [], {}], "method name string"),
            (["", [], {}], "method name string"),
            (["m", {}, {}], "args as an array"),
            (["m", [], []], "kwargs as a string-keyed map"),
            ("m", "got str"),
        ],
    )
    def test_wrong_shapes_are_rejected_clearly(self, body: Any, complaint: str) -> None:
        with pytest.raises(MalformedMessageError, match="request body must be") as info:
            Request.decode(envelope_of(body), JSON)
        assert complaint in str(info.value)

    def test_non_string_kwargs_keys_are_rejected(self) -> None:
        envelope = envelope_of(("m", (), {1: 2}), PickleCodec())
        with pytest.raises(MalformedMessageError, match="string-keyed"):
            Request.decode(envelope, PickleCodec())

    def test_undecodable_body_raises_decode_error(self) -> None:
        envelope = Envelope(body=b"\xff not json", content_type="json")
        with pytest.raises(DecodeError, match="json cannot decode"):
            Request.decode(envelope, JSON)

    def test_unencodable_argument_raises_encode_error_naming_the_codec(self) -> None:
        with pytest.raises(EncodeError, match="json cannot encode"):
            Request("m", ({1, 2},)).encode(JSON)


class TestReply:
    def test_success_round_trip(self) -> None:
        envelope = Reply.success("c1", {"a": [1]}).encode(JSON)
        assert envelope.body == b'[null, {"a": [1]}]'
        assert Headers.ERROR_TYPE not in envelope.headers
        decoded = Reply.decode(envelope, JSON)
        assert decoded.ok
        assert decoded.result == {"a": [1]}
        assert decoded.correlation_id == "c1"
        assert decoded.to_exception() is None

    def test_failure_carries_message_and_type_in_a_header(self) -> None:
        envelope = Reply.from_exception("c2", KeyError("nope")).encode(JSON)
        assert envelope.body == b"[\"'nope'\", null]"
        assert envelope.headers[Headers.ERROR_TYPE] == "KeyError"
        exc = Reply.decode(envelope, JSON).to_exception()
        assert isinstance(exc, RemoteException)
        assert str(exc) == "'nope'"
        assert exc.remote_type == "KeyError"

    def test_empty_exception_message_is_never_sent_empty(self) -> None:
        # isclib 1.x clients read an empty error slot as success.
        envelope = Reply.from_exception("c", ValueError()).encode(JSON)
        assert envelope.body == b'["ValueError", null]'
        assert Reply.failure("c", "").error == "Remote error"

    @pytest.mark.parametrize("falsy", [None, "", 0, {}, []])
    def test_a_falsy_error_slot_means_success_as_in_isclib_1(self, falsy: Any) -> None:
        assert Reply.decode(envelope_of([falsy, 7]), JSON).result == 7

    def test_a_legacy_reply_has_no_error_type(self) -> None:
        exc = Reply.decode(envelope_of(["boom", None]), JSON).to_exception()
        assert exc is not None
        assert exc.remote_type is None
        assert str(exc) == "boom"

    def test_a_non_string_error_becomes_its_repr(self) -> None:
        reply = Reply.decode(envelope_of([{"code": 1}, None]), JSON)
        assert reply.error == "{'code': 1}"

    def test_error_type_header_as_bytes_is_read(self) -> None:
        envelope = envelope_of(["boom", None], headers={Headers.ERROR_TYPE: b"app.Err"})
        assert Reply.decode(envelope, JSON).error_type == "app.Err"

    def test_a_remote_error_passed_on_keeps_its_type_and_grows_its_chain(self) -> None:
        # inventory.reserve raised ValueError; orders.place let the RemoteException propagate.
        first = Reply.from_exception("c1", ValueError("out of stock"), "inventory.reserve")
        got = Reply.decode(first.encode(JSON), JSON).to_exception()
        assert got is not None
        assert (got.remote_type, got.remote_chain) == ("ValueError", ("inventory.reserve",))
        second = Reply.from_exception("c2", got, "orders.place").encode(JSON)
        assert second.body == b'["out of stock", null]'  # the error slot stays the message
        assert second.headers[Headers.ERROR_TYPE] == "ValueError"
        assert second.headers[Headers.ERROR_CHAIN] == ["inventory.reserve", "orders.place"]
        outer = Reply.decode(second, JSON).to_exception()
        assert outer is not None
        assert outer.remote_type == "ValueError"
        assert outer.remote_chain == ("inventory.reserve", "orders.place")

    def test_a_remote_error_without_a_type_is_named_as_before(self) -> None:
        legacy = RemoteException("boom")  # from an isclib 1.x node: no type was sent
        reply = Reply.from_exception("c", legacy, "orders.place")
        assert reply.error_type == "isc.core.errors.RemoteException"
        assert reply.error_chain == ("orders.place",)

    def test_the_chain_is_bounded(self) -> None:
        long = RemoteException("x", "KeyError", tuple(f"s{i}.m" for i in range(100)))
        chain = Reply.from_exception("c", long, "last.m").error_chain
        assert len(chain) == MAX_ERROR_CHAIN
        assert chain[-1] == "last.m"

    @pytest.mark.parametrize(
        ("header", "chain"),
        [
            (["a.b", b"c.d"], ("a.b", "c.d")),
            ("a.b", ()),
            (7, ()),
            ([1, None, "", "a.b", {"x": 1}], ("a.b",)),
            (["x" * 5000], ("x" * 512,)),
            ([f"s{i}" for i in range(100)], tuple(f"s{i}" for i in range(68, 100))),
        ],
    )
    def test_a_received_chain_header_is_checked(self, header: Any, chain: Any) -> None:
        envelope = envelope_of(["boom", None], headers={Headers.ERROR_CHAIN: header})
        assert Reply.decode(envelope, JSON).error_chain == chain

    def test_a_success_or_a_plain_error_sends_no_chain(self) -> None:
        assert Headers.ERROR_CHAIN not in Reply.success("c", 1).encode(JSON).headers
        assert Headers.ERROR_CHAIN not in Reply.failure("c", "x", "E").encode(JSON).headers

    @pytest.mark.parametrize("body", [[None], [None, 1, 2], "x", {"error": None}])
    def test_wrong_shapes_are_rejected(self, body: Any) -> None:
        with pytest.raises(MalformedMessageError, match=r"reply body must be an array \[error"):
            Reply.decode(envelope_of(body), JSON)


class TestNotification:
    def test_one_argument_uses_the_isclib_1_form(self) -> None:
        notification = Notification("boom", ({"foo": "bar"},))
        assert notification.legacy_compatible
        envelope = notification.encode(JSON)
        assert envelope.body == b'["boom", {"foo": "bar"}]'
        assert envelope.correlation_id == notification.correlation_id
        decoded = Notification.decode(envelope, JSON)
        assert (decoded.event, decoded.args, decoded.kwargs) == ("boom", ({"foo": "bar"},), {})

    @pytest.mark.parametrize(
        ("args", "kwargs", "body"),
        [
            (("alice", "hi"), {}, b'["m", ["alice", "hi"], {}]'),
            ((), {}, b'["m", [], {}]'),
            (("a",), {"k": 1}, b'["m", ["a"], {"k": 1}]'),
        ],
    )
    def test_other_arities_use_the_three_item_form(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], body: bytes
    ) -> None:
        envelope = Notification("m", args, kwargs).encode(JSON)
        assert envelope.body == body
        decoded = Notification.decode(envelope, JSON)
        assert (decoded.args, decoded.kwargs) == (args, kwargs)

    def test_a_list_argument_stays_one_argument(self) -> None:
        decoded = Notification.decode(Notification("m", ([1, 2],)).encode(JSON), JSON)
        assert decoded.args == ([1, 2],)

    @pytest.mark.parametrize(
        "body", [["m"], ["m", 1, {}, 2], [3, "x"], ["", "x"], ["m", 1, {}], ["m", [], [1]], 5]
    )
    def test_wrong_shapes_are_rejected(self, body: Any) -> None:
        with pytest.raises(MalformedMessageError, match="notification body must be"):
            Notification.decode(envelope_of(body), JSON)


class TextCodec(AbstractCodec):
    """An isclib 1.x style codec: encode returns str."""

    content_type = "text"

    def encode(self, message: Any) -> bytes:
        return repr(message)  # type: ignore[return-value]

    def decode(self, payload: bytes) -> Any:
        return eval(payload)  # test-only


class BrokenCodec(AbstractCodec):
    """A codec that fails with its own exception types and returns the wrong type."""

    content_type = "broken"

    def encode(self, message: Any) -> bytes:
        if message[0] == "m":
            return 42  # type: ignore[return-value]
        raise RuntimeError("encoder exploded")

    def decode(self, payload: bytes) -> Any:
        raise RuntimeError("decoder exploded")


class TestCustomCodecs:
    def test_a_codec_returning_text_is_encoded_as_utf8(self) -> None:
        envelope = Request("m", ("é",)).encode(TextCodec())
        assert envelope.body == repr(("m", ("é",), {})).encode("utf-8")

    def test_a_codec_returning_a_non_bytes_value_is_an_encode_error(self) -> None:
        with pytest.raises(EncodeError, match="returned int, expected bytes"):
            Request("m").encode(BrokenCodec())

    def test_foreign_codec_errors_are_wrapped(self) -> None:
        with pytest.raises(EncodeError, match="broken cannot encode the reply: encoder exploded"):
            Reply.success("c", 1).encode(BrokenCodec())
        with pytest.raises(DecodeError, match="broken cannot decode the request: decoder explo"):
            Request.decode(Envelope(body=b"x", content_type="broken"), BrokenCodec())


class AppError(Exception):
    pass


def test_exception_type_names() -> None:
    assert exception_type_name(ValueError("x")) == "ValueError"
    assert exception_type_name(AppError()) == f"{__name__}.AppError"


def test_typedjson_request_keeps_extended_types() -> None:
    import datetime

    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    codec = TypedJSONCodec()
    decoded = Request.decode(Request("m", (when,), {"at": when}).encode(codec), codec)
    assert decoded.args == (when,)
    assert decoded.kwargs == {"at": when}


def test_remote_exception_pickles_with_its_type() -> None:
    exc = pickle.loads(pickle.dumps(RemoteException("boom", remote_type="KeyError")))
    assert (str(exc), exc.remote_type) == ("boom", "KeyError")


def test_remote_exception_pickles_with_its_chain() -> None:
    sent = RemoteException("boom", "KeyError", ("a.b", "c.d"))
    exc = pickle.loads(pickle.dumps(sent))
    assert (str(exc), exc.remote_type, exc.remote_chain) == ("boom", "KeyError", ("a.b", "c.d"))
    shown = "RemoteException('boom', remote_type='KeyError', remote_chain=('a.b', 'c.d'))"
    assert repr(exc) == shown
