"""Wire-protocol message types: requests, replies and notifications.

Bodies keep the isclib 1.x layout so both generations interoperate (``docs/protocol.md``):

* request: ``[method, args, kwargs]``
* reply: ``[error, result]`` where ``error`` is ``None`` or a non-empty message string
* notification: ``[event, data]`` for one positional argument; ``[event, args, kwargs]``
  otherwise (isclib 1.x nodes fail to unpack it and log it, so no handler runs wrongly)

Everything richer (remote exception type, deadline, protocol version, trace context) travels
in AMQP headers, which isclib 1.x peers ignore. An :class:`Envelope` is a message as it travels:
body and properties, independent of any AMQP library.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .codecs import AbstractCodec
from .errors import DecodeError, EncodeError, MalformedMessageError, RemoteException
from .naming import new_correlation_id

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_ERROR_CHAIN",
    "Headers",
    "Envelope",
    "Request",
    "Reply",
    "Notification",
    "exception_type_name",
]

#: The isc wire-protocol version, sent in the :attr:`Headers.PROTOCOL` header. isclib 1.x
#: sends no such header; its protocol counts as version 1.
PROTOCOL_VERSION = 2
#: The most entries of :attr:`Headers.ERROR_CHAIN` sent or read (the latest are kept), and
#: the longest entry read: a loop of services, or a hostile peer, cannot grow replies.
MAX_ERROR_CHAIN = 32
_MAX_CHAIN_ENTRY = 512


class Headers:
    """AMQP header names reserved by isc. Peers that do not know a header ignore it."""

    #: Protocol version of the sender (int).
    PROTOCOL = "x-isc-version"
    #: Reply header: the remote exception's type, e.g. ``ValueError`` or ``app.errors.NotFound``.
    #: For an error that crossed services, the type first raised (see :attr:`ERROR_CHAIN`).
    ERROR_TYPE = "x-isc-error-type"
    #: Reply header: the ``service.method`` calls an error came through, the one that raised
    #: it first (an array of strings, at most :data:`MAX_ERROR_CHAIN`, the latest kept).
    ERROR_CHAIN = "x-isc-error-chain"
    #: Request header: when the caller gives up, in milliseconds since the Unix epoch (int).
    DEADLINE = "x-isc-deadline"
    #: W3C trace context of the sender's current span (``isc.core.tracing``), on requests
    #: and notifications when OpenTelemetry is installed.
    TRACEPARENT = "traceparent"
    #: W3C vendor-specific trace state that goes with :attr:`TRACEPARENT`.
    TRACESTATE = "tracestate"
    #: Prefix reserved for future isc headers.
    RESERVED_PREFIX = "x-isc-"


@dataclasses.dataclass(frozen=True, init=False)
class Envelope:
    """A message as it travels: the encoded body and the AMQP properties isc sets."""

    body: bytes
    content_type: str
    content_encoding: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __init__(
        self,
        body: bytes,
        content_type: str,
        content_encoding: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        # Two envelopes per call on each side: one dict update instead of the six
        # object.__setattr__ calls of a frozen dataclass's generated __init__.
        vars(self).update(
            body=body,
            content_type=content_type,
            content_encoding=content_encoding,
            correlation_id=correlation_id,
            reply_to=reply_to,
            headers={} if headers is None else headers,
        )


def exception_type_name(exc: BaseException) -> str:
    """The name sent in :attr:`Headers.ERROR_TYPE`: builtins by name, others module-qualified."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode(codec: AbstractCodec, what: str, body: Any) -> bytes:
    try:
        payload: object = codec.encode(body)
    except EncodeError:
        raise
    except Exception as exc:  # a third-party codec raising its own error type
        raise EncodeError(f"{codec.content_type} cannot encode the {what}: {exc}") from exc
    if isinstance(payload, str):  # isclib 1.x codecs return text
        payload = payload.encode("utf-8")
    if not isinstance(payload, (bytes, bytearray)):
        raise EncodeError(
            f"codec {codec.content_type!r} returned {type(payload).__name__}, expected bytes"
        )
    return bytes(payload)


def _decode(codec: AbstractCodec, what: str, envelope: Envelope) -> Any:
    try:
        return codec.decode(envelope.body)
    except DecodeError:
        raise
    except Exception as exc:  # a third-party codec raising its own error type
        raise DecodeError(f"{codec.content_type} cannot decode the {what}: {exc}") from exc


def _protocol_headers(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    headers: dict[str, Any] = {Headers.PROTOCOL: PROTOCOL_VERSION}
    if extra:
        headers.update(extra)
    return headers


def _shape_error(what: str, expected: str, body: Any) -> MalformedMessageError:
    return MalformedMessageError(
        f"{what} body must be {expected}, got {type(body).__name__} {body!r:.80}"
    )


@dataclasses.dataclass
class Request:
    """A call of ``method`` with ``args`` and ``kwargs`` on a service.

    ``deadline`` (seconds since the Unix epoch) tells the node when the caller gives up.
    """

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    correlation_id: str = dataclasses.field(default_factory=new_correlation_id)
    reply_to: str | None = None
    deadline: float | None = None
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)

    def encode(self, codec: AbstractCodec) -> Envelope:
        """Encode as an :class:`Envelope` with ``codec``."""
        headers = _protocol_headers(self.headers)
        if self.deadline is not None:
            headers[Headers.DEADLINE] = round(self.deadline * 1000)
        return Envelope(
            body=_encode(codec, "request", (self.method, tuple(self.args), self.kwargs)),
            content_type=codec.content_type,
            content_encoding=codec.content_encoding,
            correlation_id=self.correlation_id,
            reply_to=self.reply_to,
            headers=headers,
        )

    @classmethod
    def decode(cls, envelope: Envelope, codec: AbstractCodec) -> Request:
        """Decode a request; raise :class:`DecodeError` or :class:`MalformedMessageError`."""
        body = _decode(codec, "request", envelope)
        expected = "an array [method, args, kwargs]"
        if not isinstance(body, (list, tuple)) or len(body) != 3:
            raise _shape_error("request", expected, body)
        method, args, kwargs = body
        if not isinstance(method, str) or not method:
            raise _shape_error("request", f"{expected} with a method name string", body)
        if not isinstance(args, (list, tuple)):
            raise _shape_error("request", f"{expected} with args as an array", body)
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise _shape_error("request", f"{expected} with kwargs as a string-keyed map", body)
        headers = dict(envelope.headers or {})
        deadline_ms = headers.get(Headers.DEADLINE)
        deadline = None
        if isinstance(deadline_ms, (int, float)) and not isinstance(deadline_ms, bool):
            deadline = deadline_ms / 1000.0
        return cls(
            method=method,
            args=tuple(args),
            kwargs=kwargs,
            correlation_id=envelope.correlation_id or "",
            reply_to=envelope.reply_to,
            deadline=deadline,
            headers=headers,
        )


@dataclasses.dataclass
class Reply:
    """The answer to a request: a ``result``, or an ``error`` message (never empty).

    ``error_type`` names the remote exception's type and ``error_chain`` the ``service.method``
    calls it came through (see :class:`RemoteException`); both travel in headers.
    """

    correlation_id: str
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    error_chain: tuple[str, ...] = ()

    @classmethod
    def success(cls, correlation_id: str, result: Any) -> Reply:
        """A successful reply carrying ``result``."""
        return cls(correlation_id=correlation_id, result=result)

    @classmethod
    def failure(
        cls,
        correlation_id: str,
        error: str,
        error_type: str | None = None,
        error_chain: tuple[str, ...] = (),
    ) -> Reply:
        """An error reply; an empty ``error`` becomes the type name (old clients need text)."""
        return cls(
            correlation_id=correlation_id,
            error=error or error_type or "Remote error",
            error_type=error_type,
            error_chain=tuple(error_chain)[-MAX_ERROR_CHAIN:],
        )

    @classmethod
    def from_exception(
        cls, correlation_id: str, exc: BaseException, origin: str | None = None
    ) -> Reply:
        """An error reply describing ``exc`` (its message and type name).

        A :class:`RemoteException` that another service sent keeps the type that service
        reported and its chain, so callers further up see the original type. ``origin``
        (``"service.method"``, the call that failed here) is added to the chain.
        """
        error_type: str | None = None
        chain: tuple[str, ...] = ()
        if isinstance(exc, RemoteException):
            error_type = exc.remote_type
            chain = exc.remote_chain
        if origin:
            chain = (*chain, origin)
        return cls.failure(correlation_id, str(exc), error_type or exception_type_name(exc), chain)

    @property
    def ok(self) -> bool:
        """True for a successful reply."""
        return self.error is None

    def to_exception(self) -> RemoteException | None:
        """The :class:`RemoteException` this reply carries, or None for a success."""
        if self.error is None:
            return None
        return RemoteException(
            self.error, remote_type=self.error_type, remote_chain=self.error_chain
        )

    def encode(self, codec: AbstractCodec) -> Envelope:
        """Encode as an :class:`Envelope` with ``codec`` (the request's codec)."""
        headers = _protocol_headers()
        if self.error is not None and self.error_type:
            headers[Headers.ERROR_TYPE] = self.error_type
        if self.error is not None and self.error_chain:
            headers[Headers.ERROR_CHAIN] = list(self.error_chain[-MAX_ERROR_CHAIN:])
        return Envelope(
            body=_encode(codec, "reply", (self.error, self.result)),
            content_type=codec.content_type,
            content_encoding=codec.content_encoding,
            correlation_id=self.correlation_id,
            headers=headers,
        )

    @classmethod
    def decode(cls, envelope: Envelope, codec: AbstractCodec) -> Reply:
        """Decode a reply; a falsy error slot means success, as isclib 1.x reads it."""
        body = _decode(codec, "reply", envelope)
        if not isinstance(body, (list, tuple)) or len(body) != 2:
            raise _shape_error("reply", "an array [error, result]", body)
        error, result = body
        headers = envelope.headers or {}
        error_type = headers.get(Headers.ERROR_TYPE)
        if isinstance(error_type, bytes):
            error_type = error_type.decode("utf-8", "replace")
        if not error:
            return cls(correlation_id=envelope.correlation_id or "", result=result)
        return cls(
            correlation_id=envelope.correlation_id or "",
            error=error if isinstance(error, str) else repr(error),
            error_type=error_type if isinstance(error_type, str) else None,
            error_chain=_error_chain(headers.get(Headers.ERROR_CHAIN)),
        )


def _error_chain(value: Any) -> tuple[str, ...]:
    """The :attr:`Headers.ERROR_CHAIN` of a received reply: its text entries (bytes decoded,
    long ones cut, at most :data:`MAX_ERROR_CHAIN`), or ``()`` when it is not an array."""
    if not isinstance(value, (list, tuple)):
        return ()
    chain = []
    for entry in value[-MAX_ERROR_CHAIN:]:
        if isinstance(entry, bytes):
            entry = entry.decode("utf-8", "replace")
        if isinstance(entry, str) and entry:
            chain.append(entry[:_MAX_CHAIN_ENTRY])
    return tuple(chain)


@dataclasses.dataclass
class Notification:
    """A broadcast of ``event`` with arguments, delivered to every node listening for it.

    ``headers`` are extra AMQP headers sent along (the trace context, for instance).
    """

    event: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    correlation_id: str = dataclasses.field(default_factory=new_correlation_id)
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def legacy_compatible(self) -> bool:
        """True when isclib 1.x nodes can read it: exactly one positional argument."""
        return len(self.args) == 1 and not self.kwargs

    def encode(self, codec: AbstractCodec) -> Envelope:
        """Encode as an :class:`Envelope`: ``[event, data]`` when legacy-compatible."""
        if self.legacy_compatible:
            body: tuple[Any, ...] = (self.event, self.args[0])
        else:
            body = (self.event, tuple(self.args), self.kwargs)
        return Envelope(
            body=_encode(codec, "notification", body),
            content_type=codec.content_type,
            content_encoding=codec.content_encoding,
            correlation_id=self.correlation_id,
            headers=_protocol_headers(self.headers),
        )

    @classmethod
    def decode(cls, envelope: Envelope, codec: AbstractCodec) -> Notification:
        """Decode either notification form."""
        body = _decode(codec, "notification", envelope)
        expected = "an array [event, data] or [event, args, kwargs]"
        if not isinstance(body, (list, tuple)) or len(body) not in (2, 3):
            raise _shape_error("notification", expected, body)
        event = body[0]
        if not isinstance(event, str) or not event:
            raise _shape_error("notification", f"{expected} with an event name string", body)
        cid = envelope.correlation_id or ""
        headers = dict(envelope.headers or {})
        if len(body) == 2:
            return cls(event=event, args=(body[1],), correlation_id=cid, headers=headers)
        args, kwargs = body[1], body[2]
        if not isinstance(args, (list, tuple)):
            raise _shape_error("notification", f"{expected} with args as an array", body)
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise _shape_error(
                "notification", f"{expected} with kwargs as a string-keyed map", body
            )
        return cls(
            event=event, args=tuple(args), kwargs=kwargs, correlation_id=cid, headers=headers
        )
