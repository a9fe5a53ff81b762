"""FakeClient: a Client that never connects, for unit tests of code that calls isc services."""

from __future__ import annotations

from typing import Any, NamedTuple

from isc.client._client import DEFAULT_MAX_MESSAGE_SIZE, Client
from isc.client._future import FutureResult
from isc.core import (
    DEFAULT_EXCHANGE,
    AbstractCodec,
    ClientClosedError,
    ConfigurationError,
    IscError,
    Notification,
    Reply,
    Request,
    ServiceNotFoundError,
    validate_service_name,
)

__all__ = ["FakeClient", "RecordedCall", "RecordedNotification"]


class RecordedCall(NamedTuple):
    """A call a :class:`FakeClient` received, with the arguments as a service would see them."""

    service: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class RecordedNotification(NamedTuple):
    """A notification a :class:`FakeClient` was asked to send, as a listener would see it."""

    event: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class FakeClient(Client):
    """A :class:`~isc.client.Client` that answers calls from canned answers and records
    calls and notifications, without a broker.

    Give it to the code under test instead of a real client (a constructor argument, or
    ``monkeypatch.setattr(module, "client", FakeClient())`` for a module-level client). It
    is a ``Client``, so every way of calling works: ``fake.users.get_user(1)``,
    ``fake.invoke("users", "get_user", 1)``, ``call_async``, ``notify``.

    Arguments, results and notifications go through the codec as on the wire, so a value the
    codec cannot carry fails here as it would in production, and what is recorded and
    returned is what the other side would get (a tuple arrives as a list in JSON).

    :param exchange: the exchange service names are checked against.
    :param codec: the codec (default :class:`~isc.core.TypedJSONCodec`, as ``Client``).
    :param max_message_size: as ``Client``'s: a larger request or notification fails with
        :class:`~isc.core.MessageTooLargeError`.
    """

    def __init__(
        self,
        exchange: str = DEFAULT_EXCHANGE,
        codec: AbstractCodec | type[AbstractCodec] | None = None,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__(exchange=exchange, codec=codec, max_message_size=max_message_size)
        #: Every call, in order, with its arguments after the codec's round trip.
        self.calls: list[RecordedCall] = []
        #: Every notification, in order, with its arguments after the codec's round trip.
        self.notifications: list[RecordedNotification] = []
        self._answers: dict[tuple[str, str], Any] = {}

    def answer(self, service: str, method: str, result: Any) -> None:
        """Answer every call of ``service.method`` with ``result``.

        A callable ``result`` is called with the call's arguments and its return value is the
        answer. An :class:`~isc.core.IscError` it raises reaches the caller as it is (raise
        ``RemoteException("...", remote_type="KeyError")`` or ``TimeoutException`` to
        simulate those); any other exception becomes the ``RemoteException`` a node would
        send. Calls of a method without an answer raise
        :class:`~isc.core.ServiceNotFoundError`.
        """
        validate_service_name(self._exchange, service)
        if not isinstance(method, str) or not method:
            raise ConfigurationError(f"method must be a non-empty string, got {method!r}")
        self._answers[(service, method)] = result

    def calls_to(self, service: str, method: str | None = None) -> list[RecordedCall]:
        """The recorded calls of ``service`` (of its ``method`` only, if given)."""
        return [
            call
            for call in self.calls
            if call.service == service and (method is None or call.method == method)
        ]

    # -- Client ------------------------------------------------------------------------------

    def start(self) -> FakeClient:
        """Nothing to connect: return the client."""
        self._check_open()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Refuse calls from now on, as a stopped ``Client`` does."""
        self._closed = True

    def wait_connected(self, timeout: float | None = None) -> bool:
        """True until :meth:`stop` (a fake is always connected)."""
        return not self._closed

    @property
    def is_connected(self) -> bool:
        """True until :meth:`stop`."""
        return not self._closed

    def _send(
        self,
        service: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        timeout: float,
        *,
        timer: bool,
    ) -> FutureResult:
        """Record the call and return a future already holding its answer (see :meth:`answer`);
        every way of calling (``invoke``, ``call``, ``call_async``, proxies) ends here."""
        validate_service_name(self._exchange, service)
        self._check_open()
        codec = self._codec
        envelope = Request(method, tuple(args), dict(kwargs or {})).encode(codec)
        self._check_size(envelope, f"the request to {service}.{method}")  # as a Client does
        request = Request.decode(envelope, codec)
        self.calls.append(RecordedCall(service, method, request.args, request.kwargs))
        future = FutureResult(f"{service}.{method}", correlation_id=request.correlation_id)
        key = (service, method)
        if key not in self._answers:
            future.reject(
                ServiceNotFoundError(
                    f"FakeClient has no answer for {service}.{method}: give one with "
                    f"fake.answer({service!r}, {method!r}, result)"
                )
            )
            return future
        answer = self._answers[key]
        cid = request.correlation_id
        try:
            result = answer(*request.args, **request.kwargs) if callable(answer) else answer
        except IscError as exc:
            future.reject(exc)
            return future
        except Exception as exc:
            reply = Reply.from_exception(cid, exc)  # what a node sends for a method that raised
        else:
            reply = Reply.success(cid, result)
        try:
            envelope = reply.encode(codec)
        except IscError as exc:  # a node answers an unencodable result with the error
            envelope = Reply.from_exception(cid, exc).encode(codec)
        reply = Reply.decode(envelope, codec)
        error = reply.to_exception()
        if error is None:
            future.resolve(reply.result)
        else:
            future.reject(error)
        return future

    def notify(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Record the notification (after the codec's round trip); nothing is sent."""
        if not isinstance(event, str) or not event:
            raise ConfigurationError(f"event must be a non-empty string, got {event!r}")
        self._check_open()
        codec = self._codec
        envelope = Notification(event, args, kwargs).encode(codec)
        self._check_size(envelope, f"notification {event!r}")
        received = Notification.decode(envelope, codec)
        self.notifications.append(RecordedNotification(event, received.args, received.kwargs))

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client was stopped; create a new Client")

    def __repr__(self) -> str:
        return (
            f"<isc FakeClient exchange={self._exchange!r} {len(self.calls)} call(s) "
            f"{len(self.notifications)} notification(s)>"
        )
