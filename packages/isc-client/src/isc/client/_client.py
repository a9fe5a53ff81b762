"""The isc Client: remote calls and notifications over one AMQP connection."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pika.channel
import pika.spec

from isc.core import (
    DEFAULT_EXCHANGE,
    DEFAULT_URL,
    AbstractCodec,
    ClientClosedError,
    ConfigurationError,
    DecodeError,
    Envelope,
    JSONCodec,
    MessageTooLargeError,
    Notification,
    Reply,
    Request,
    ServiceNotFoundError,
    TimeoutException,
    TypedJSONCodec,
    fanout_exchange_name,
    redact_url,
    reply_queue_name,
    service_routing_key,
    validate_exchange_name,
    validate_service_name,
)
from isc.core.tracing import inject as inject_trace_context

from ._connection import AmqpWorker, Outgoing, received_envelope
from ._frames import UndecodableProperties
from ._future import FutureResult

__all__ = ["Client", "ServiceProxy", "MethodProxy"]

log = logging.getLogger("isc.client")

#: How long a caller whose call just timed out waits for the reply another thread is handling.
_CALLER_GRACE = 0.25

#: After a reconnect, nodes may still be redeclaring their queues (a restarted broker forgets
#: non-durable ones): for this many seconds an unroutable call is retried within its deadline
#: instead of failing with ServiceNotFoundError.
RECONNECT_GRACE = 5.0
_RETRY_DELAY = 0.2

#: The default ``max_message_size``: RabbitMQ 4's own default limit, 16 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


class _PendingCall:
    """A call waiting for its reply: the future, the codec to decode with, its timer."""

    __slots__ = ("codec", "future", "name", "outgoing", "sent", "timeout", "timer")

    def __init__(self, future: FutureResult, codec: AbstractCodec, name: str, timeout: float):
        self.future = future
        self.codec = codec
        self.name = name
        self.timeout = timeout
        self.sent = False
        self.timer: object | None = None
        self.outgoing: Outgoing | None = None


class Client:
    """A connection to the isc services on a RabbitMQ broker. Thread-safe.

    ``client.users.get_user(1)`` calls method ``get_user`` of service ``users`` and waits for
    the result; ``client.users.get_user.call_async(1)`` returns a :class:`FutureResult`;
    ``client.notify('event', *args, **kwargs)`` broadcasts to every node. The client
    connects on :meth:`start` or on its first call, and reconnects by itself.

    :param host: the broker URL (``amqp://`` or ``amqps://``).
    :param exchange: the isc exchange; services and clients must agree on it.
    :param codec: the codec used for requests (default: :class:`TypedJSONCodec`).
    :param connect_timeout: seconds allowed for establishing a connection.
    :param reconnect_timeout: the longest pause between reconnection attempts; 0 disables
        reconnecting.
    :param invoke_timeout: seconds a call waits for its reply by default.
    :param max_message_size: the largest request, notification or reply body in bytes
        (``None``: no limit); a larger one fails with :class:`MessageTooLargeError`.
    :param max_buffered_notifications: how many notifications may wait for the broker's
        confirmation (e.g. during an outage) before :meth:`notify` raises
        :class:`BufferFullError`.
    """

    def __init__(
        self,
        host: str = DEFAULT_URL,
        exchange: str = DEFAULT_EXCHANGE,
        codec: AbstractCodec | type[AbstractCodec] | None = None,
        connect_timeout: float = 2,
        reconnect_timeout: float = 3,
        invoke_timeout: float = 20,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_buffered_notifications: int = 10_000,
    ) -> None:
        self._url = host
        self._exchange = validate_exchange_name(exchange)
        self._codec = _as_codec(codec)
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._invoke_timeout = _check_timeout(invoke_timeout)
        self._max_message_size = (
            None if max_message_size is None else _check_limit("max_message_size", max_message_size)
        )
        self._max_buffered = _check_limit("max_buffered_notifications", max_buffered_notifications)
        self._pending: dict[str, _PendingCall] = {}
        self._lock = threading.Lock()
        self._worker: AmqpWorker | None = None
        self._closed = False
        self._dropped_replies = 0
        self._last_worker: AmqpWorker | None = None  # keeps stats readable after stop()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Client:
        """Connect in the background (calls made before the connection is up wait for it)."""
        self._get_worker()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection; pending calls fail with :class:`ClientClosedError`.

        Notifications not yet confirmed by the broker get up to ``timeout`` seconds to be
        confirmed first; any left are logged as possibly undelivered.
        """
        with self._lock:
            worker, self._worker = self._worker, None
            self._last_worker = worker
            self._closed = True
        if worker is not None:
            if worker.buffered:
                worker.wait_confirmed(timeout)
            worker.stop()
        self._fail_pending(ClientClosedError("the client was stopped"), only_sent=False)

    def __enter__(self) -> Client:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Start if needed and wait until the connection is ready; return whether it is."""
        return self._get_worker().ready.wait(timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the broker confirmed every notification sent so far; return whether it did.

        Notifications are delivered at least once: they wait in a bounded buffer while the
        connection is down and are published again if it drops before the broker confirms them.
        """
        worker = self._worker
        return worker is None or worker.wait_confirmed(timeout)

    @property
    def pending_calls(self) -> int:
        """How many calls are waiting for their reply."""
        return len(self._pending)

    @property
    def stats(self) -> dict[str, int]:
        """Counters of what this client dropped or sent twice.

        ``dropped_replies``: replies to calls that had already ended (timed out, failed, or a
        duplicate after a redelivery); ``republished``: notifications published again after a
        reconnect; ``nacked``: notifications the broker refused once (published again);
        ``abandoned``: notifications still unconfirmed when the client stopped.
        """
        worker = self._worker or self._last_worker
        counters = dict(worker.stats) if worker is not None else {}
        return {"dropped_replies": self._dropped_replies, **counters}

    @property
    def is_connected(self) -> bool:
        """True while the connection and the reply queue are up."""
        worker = self._worker
        return worker is not None and worker.ready.is_set()

    def _get_worker(self) -> AmqpWorker:
        worker = self._worker
        if worker is not None:
            return worker
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client was stopped; create a new Client")
            if self._worker is None:
                self._worker = AmqpWorker(
                    self._url,
                    self._exchange,
                    connect_timeout=self._connect_timeout,
                    reconnect_timeout=self._reconnect_timeout,
                    setup=self._setup_channel,
                    on_return=self._on_return,
                    on_disconnect=lambda exc: self._fail_pending(exc, only_sent=True),
                    max_buffered=self._max_buffered,
                )
                self._worker.start()
            return self._worker

    # -- settings ----------------------------------------------------------------------------

    def set_codec(self, codec: AbstractCodec | type[AbstractCodec]) -> None:
        """Use ``codec`` for the calls and notifications made from now on."""
        self._codec = _as_codec(codec)

    def force_json(self) -> None:
        """Use the plain :class:`JSONCodec` from now on."""
        self.set_codec(JSONCodec())

    @property
    def codec(self) -> AbstractCodec:
        """The codec used for new calls and notifications."""
        return self._codec

    def set_invoke_timeout(self, timeout: float) -> None:
        """Set how many seconds calls wait for their reply by default."""
        self._invoke_timeout = _check_timeout(timeout)

    def set_logging_level(self, level: int | str) -> None:
        """Set the level of isc's loggers (``isc`` and below)."""
        logging.getLogger("isc").setLevel(level)

    # -- calls -------------------------------------------------------------------------------

    def invoke(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``service.method(*args, **kwargs)`` and wait for the result.

        Raises :class:`RemoteException` when the remote method fails (or does not exist),
        :class:`TimeoutException` when no reply arrives within the invoke timeout.
        """
        return self.call(service, method, args, kwargs)

    def invoke_async(self, service: str, method: str, *args: Any, **kwargs: Any) -> FutureResult:
        """Send the call and return a :class:`FutureResult` at once."""
        return self.call_async(service, method, args, kwargs)

    def call(
        self,
        service: str,
        method: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Like :meth:`invoke`, with explicit arguments and a per-call ``timeout``."""
        timeout = self._invoke_timeout if timeout is None else _check_timeout(timeout)
        deadline = time.monotonic() + timeout
        # No timer on the I/O thread: this thread waits, and expires the call itself.
        future = self._send(service, method, args, kwargs, timeout, timer=False)
        worker = self._worker
        if worker is not None and not future.done():
            # If the I/O thread is idle, wait for the reply on this thread: no hand-over.
            worker.run_until(future.done, timeout)
        try:
            return future.result(max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            pass
        if self._pop(future.extra["correlation_id"]) is None:
            return future.result(_CALLER_GRACE)  # the reply came in just now
        error = self._timeout_error(future.cannonical_name, timeout)
        future.reject(error)
        del future  # the traceback holds this frame: keep the future out of that cycle
        raise error

    def call_async(
        self,
        service: str,
        method: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> FutureResult:
        """Like :meth:`invoke_async`, with explicit arguments and a per-call ``timeout``."""
        timeout = self._invoke_timeout if timeout is None else _check_timeout(timeout)
        return self._send(service, method, args, kwargs, timeout, timer=True)

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
        """Send a call; with ``timer``, the I/O thread fails it after ``timeout`` seconds."""
        validate_service_name(self._exchange, service)
        codec = self._codec
        name = f"{service}.{method}"
        deadline = time.time() + timeout
        request = Request(method, tuple(args), dict(kwargs or {}), deadline=deadline)
        inject_trace_context(request.headers)  # W3C traceparent when OpenTelemetry is installed
        envelope = request.encode(codec)  # encode errors reach the caller right here
        self._check_size(envelope, f"the request to {service}.{method}")
        future = FutureResult(name, correlation_id=request.correlation_id)
        call = _PendingCall(future, codec, name, timeout)
        cid = request.correlation_id
        worker = self._get_worker()
        self._pending[cid] = call
        future.add_done_callback(self._forget)  # a bound method: no reference cycle

        def on_sent() -> bool:
            if future.done():
                return False
            call.sent = True
            return True

        call.outgoing = Outgoing(
            envelope,
            self._exchange,
            service_routing_key(self._exchange, service),
            mandatory=True,
            wants_reply=True,
            expiration_at=time.monotonic() + timeout,
            on_sent=on_sent,
            on_taken=(lambda: self._arm_timer(worker, cid, call)) if timer else None,
        )
        worker.submit(call.outgoing)
        return future

    def notify(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Broadcast ``event`` with arguments to every node listening for it."""
        if not isinstance(event, str) or not event:
            raise ConfigurationError(f"event must be a non-empty string, got {event!r}")
        notification = Notification(event, args, kwargs)
        inject_trace_context(notification.headers)
        envelope = notification.encode(self._codec)
        self._check_size(envelope, f"notification {event!r}")
        self._get_worker().submit(
            Outgoing(envelope, fanout_exchange_name(self._exchange), "", confirm=True)
        )

    def _check_size(self, envelope: Envelope, what: str) -> None:
        limit = self._max_message_size
        if limit is not None and len(envelope.body) > limit:
            raise MessageTooLargeError(
                f"{what} is {len(envelope.body)} bytes, over this client's max_message_size of "
                f"{limit} bytes; send less data per message or raise max_message_size "
                "(the broker's own max_message_size applies too)"
            )

    def __getattr__(self, name: str) -> ServiceProxy:
        if name.startswith("_"):
            raise AttributeError(name)
        return ServiceProxy(self, name)

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "not connected"
        return f"<isc Client {redact_url(self._url)} exchange={self._exchange!r} {state}>"

    # -- reply handling (I/O thread) ---------------------------------------------------------

    def _setup_channel(self, channel: pika.channel.Channel, ready: Callable[[], None]) -> None:
        """Declare the exchanges and this connection's reply queue, then consume it."""
        worker = self._worker
        assert worker is not None
        # The same declarations as isclib 1.x, so either side may declare first.
        channel.exchange_declare(
            self._exchange, exchange_type="direct", durable=False, auto_delete=False
        )
        channel.exchange_declare(
            fanout_exchange_name(self._exchange),
            exchange_type="fanout",
            durable=False,
            auto_delete=False,
        )
        queue = reply_queue_name()
        channel.queue_declare(queue, exclusive=True, auto_delete=True)
        # isclib 1.x nodes publish replies to the exchange with routing key = reply_to.
        channel.queue_bind(queue, self._exchange, routing_key=queue)

        def consuming(_frame: object) -> None:
            worker.reply_to = queue
            ready()

        channel.basic_consume(queue, self._on_delivery, auto_ack=True, callback=consuming)

    def _on_delivery(
        self, channel: object, method: object, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        self._on_reply(properties, body)

    def _arm_timer(self, worker: AmqpWorker, cid: str, call: _PendingCall) -> None:
        if call.future.done() or call.timer is not None:
            return
        remaining = call.timeout  # armed right after submission: close enough, never early
        call.timer = worker.call_later(remaining, lambda: self._expire(cid))

    def _expire(self, cid: str) -> None:
        call = self._pending.get(cid)
        if call is not None:
            call.timer = None  # it is firing: nothing to cancel
            self._pop(cid)
            call.future.reject(self._timeout_error(call.name, call.timeout))

    def _timeout_error(self, name: str, timeout: float) -> TimeoutException:
        worker = self._worker
        if worker is not None and not worker.ready.is_set():
            detail = f"; not connected to {redact_url(self._url)}"
            if worker.last_error is not None:
                detail += f" ({type(worker.last_error).__name__}: {worker.last_error})"
            return TimeoutException(f"no reply from {name} within {timeout:g}s{detail}")
        return TimeoutException(f"no reply from {name} within {timeout:g}s")

    def _pop(self, cid: str) -> _PendingCall | None:
        """Take a call out of the pending map: cancel its timer and drop its request (and the
        closures that refer back to it, so that the call is freed by reference counting)."""
        call = self._pending.pop(cid, None)
        if call is not None:
            call.outgoing = None
            timer, call.timer = call.timer, None
            worker = self._worker
            if timer is not None and worker is not None:
                worker.call_soon(lambda: worker.cancel_timer(timer))
        return call

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        """A call's future is done: forget the call, if whoever finished it did not."""
        self._pop(future.extra["correlation_id"])  # type: ignore[attr-defined]

    def _on_reply(self, properties: pika.spec.BasicProperties, body: bytes) -> None:
        cid = properties.correlation_id
        call = self._pop(cid) if cid else None
        undecodable = isinstance(properties, UndecodableProperties)
        if call is None:
            self._dropped_replies += 1
            if undecodable:
                log.warning(
                    "reply with undecodable AMQP headers dropped (correlation id %r): %s",
                    cid,
                    properties.isc_error,
                )
            else:
                log.debug("reply for an unknown or expired call (correlation id %r) dropped", cid)
            return
        if undecodable:
            log.warning("the reply of %s could not be read: %s", call.name, properties.isc_error)
            call.future.reject(
                DecodeError(
                    f"the reply of {call.name} could not be read: its AMQP headers could not be "
                    f"decoded ({properties.isc_error}); whether the call succeeded is unknown"
                )
            )
            return
        limit = self._max_message_size
        if limit is not None and len(body) > limit:
            call.future.reject(
                MessageTooLargeError(
                    f"the reply of {call.name} is {len(body)} bytes, over this client's "
                    f"max_message_size of {limit} bytes; it was not decoded"
                )
            )
            return
        envelope = received_envelope(properties, body)
        try:
            reply = Reply.decode(envelope, call.codec)
        except DecodeError as exc:
            call.future.reject(exc)
            return
        error = reply.to_exception()
        if error is None:
            call.future.resolve(reply.result)
        else:
            call.future.reject(error)

    def _on_return(
        self, method: pika.spec.Basic.Return, properties: pika.spec.BasicProperties
    ) -> None:
        cid = properties.correlation_id
        call = self._pending.get(cid) if cid else None
        if call is None:
            return
        worker = self._worker
        outgoing = call.outgoing
        if (
            worker is not None
            and outgoing is not None
            and worker.connections > 1
            and time.monotonic() - worker.ready_since < RECONNECT_GRACE
            and (outgoing.expiration_at or 0) - time.monotonic() > _RETRY_DELAY
        ):
            # Just reconnected: the service's nodes may not have redeclared their queue yet.
            log.debug("%s unroutable right after a reconnect; retrying", call.name)
            worker.call_later(_RETRY_DELAY, lambda: self._resubmit(worker, call))
            return
        self._pop(cid)
        service = call.name.split(".", 1)[0]
        call.future.reject(
            ServiceNotFoundError(
                f"no node serves {service!r}: the request to {call.name} could not be routed "
                f"(AMQP {method.reply_code} {method.reply_text}). Is a node of service "
                f"{service!r} running on exchange {self._exchange!r}?"
            )
        )

    def _resubmit(self, worker: AmqpWorker, call: _PendingCall) -> None:
        outgoing = call.outgoing
        if outgoing is None or call.future.done():
            return
        try:
            worker.submit(outgoing)
        except ClientClosedError as exc:
            call.future.reject(exc)

    def _fail_pending(self, error: BaseException, *, only_sent: bool) -> None:
        for cid, call in list(self._pending.items()):
            if only_sent and not call.sent:
                continue
            if self._pop(cid) is not None:
                call.future.reject(type(error)(f"{call.name}: {error}"))


class ServiceProxy:
    """``client.<service>``: attribute access yields a :class:`MethodProxy`."""

    def __init__(self, client: Client, service_name: str) -> None:
        self._client = client
        self._service_name = service_name

    def __getattr__(self, name: str) -> MethodProxy:
        if name.startswith("__"):
            raise AttributeError(name)
        return MethodProxy(self._client, self._service_name, name)

    def __repr__(self) -> str:
        return f"<ServiceProxy {self._service_name}>"


class MethodProxy:
    """``client.<service>.<method>``: call it to invoke the remote method."""

    def __init__(
        self,
        client: Client,
        service_name: str,
        method_name: str,
        timeout: float | None = None,
    ) -> None:
        self._client = client
        self._service_name = service_name
        self._method_name = method_name
        self._timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Invoke the remote method and wait for the result."""
        return self._client.call(
            self._service_name, self._method_name, args, kwargs, timeout=self._timeout
        )

    def call_async(self, *args: Any, **kwargs: Any) -> FutureResult:
        """Invoke the remote method without waiting; returns a :class:`FutureResult`."""
        return self._client.call_async(
            self._service_name, self._method_name, args, kwargs, timeout=self._timeout
        )

    def with_timeout(self, timeout: float) -> MethodProxy:
        """This method with its own timeout: ``client.users.get_user.with_timeout(2)(1)``."""
        return MethodProxy(self._client, self._service_name, self._method_name, timeout)

    def __repr__(self) -> str:
        return f"<MethodProxy {self._service_name}.{self._method_name}>"


def _as_codec(codec: AbstractCodec | type[AbstractCodec] | None) -> AbstractCodec:
    if codec is None:
        return TypedJSONCodec()
    if isinstance(codec, type) and issubclass(codec, AbstractCodec):
        return codec()
    if isinstance(codec, AbstractCodec):
        return codec
    raise ConfigurationError(f"codec must be an AbstractCodec instance, got {codec!r}")


def _check_limit(setting: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{setting} must be a positive int, got {value!r}")
    return value


def _check_timeout(timeout: float) -> float:
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)
