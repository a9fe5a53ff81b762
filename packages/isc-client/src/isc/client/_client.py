"""The isc Client: remote calls and notifications over one AMQP connection."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from isc.core import (
    DEFAULT_EXCHANGE,
    DEFAULT_URL,
    AbstractCodec,
    AccessRefusedError,
    ClientClosedError,
    ConfigurationError,
    ConnectionLostError,
    Envelope,
    JSONCodec,
    MessageTooLargeError,
    Notification,
    Request,
    TypedJSONCodec,
    check_broker_urls,
    fanout_exchange_name,
    redact_url,
    service_routing_key,
    validate_exchange_name,
    validate_service_name,
)
from isc.core.tracing import inject as inject_trace_context

from . import _process
from ._calls import NO_CONSUMER_CHECK_AFTER, RECONNECT_GRACE, CallTable, PendingCall
from ._connection import AmqpWorker, Outgoing
from ._future import FutureResult
from ._transport import Transport, TransportFactory

__all__ = ["Client", "ServiceProxy", "MethodProxy", "RECONNECT_GRACE"]

log = logging.getLogger("isc.client")

#: The default ``max_message_size``: RabbitMQ 4's own default limit, 16 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

#: The default ``max_pending_calls``.
DEFAULT_MAX_PENDING_CALLS = 10_000


class Client:
    """A connection to the isc services on a RabbitMQ broker. Thread-safe.

    ``client.users.get_user(1)`` calls method ``get_user`` of service ``users`` and waits for
    the result; ``client.users.get_user.call_async(1)`` returns a :class:`FutureResult`;
    ``client.notify('event', *args, **kwargs)`` broadcasts to every node. The client
    connects on :meth:`start` or on its first call, and reconnects by itself.

    Any number of threads may share one client; no call waits for another's. A client
    survives ``os.fork()`` (the child connects anew on its first use) and gevent's monkey
    patching applied after it was created. Stop it with :meth:`stop` (or a ``with`` block);
    a client garbage-collected while connected closes its connection with a
    ``ResourceWarning``.

    :param host: the broker URL, ``amqp://user:password@host:5672/vhost`` (or ``amqps://``);
        a password's reserved characters (``@ : / ? #``) percent-encoded. A malformed URL
        raises :class:`ConfigurationError` at once. isclib 1.x's name for it. Several URLs
        (the members of a RabbitMQ cluster), as a list or one comma-separated string: the
        client connects to one of them (processes and clients spread over them) and fails
        over to the next when it cannot connect or loses its connection (docs/cluster.md).
    :param url: the same, under the name ``Node`` uses (give ``host`` or ``url``, not both).
        Checked only for the default transport: another one takes the URL as given.
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
    :param max_pending_calls: how many calls may wait for their replies at once; one more
        raises :class:`TooManyPendingCallsError` (so a stuck service cannot make a busy
        caller's memory grow without bound).
    :param fastpath: drive pika through isc's fast path (``True``) or stock pika only
        (``False``); ``None`` follows ``ISC_PIKA_FASTPATH`` (on unless it is ``0``). Only the
        speed differs, and the fast path's salvage of undecodable headers (docs/concepts.md).
    :param transport: what carries the messages, built with the keyword arguments
        ``AmqpWorker`` takes (default: ``AmqpWorker``, a pika connection to ``host``). For
        tests and embedding: e.g. an in-memory broker's
        (:class:`isc.client.testing.memory.MemoryBroker`) ``transport``.
    """

    def __init__(
        self,
        host: str | Sequence[str] | None = None,
        exchange: str = DEFAULT_EXCHANGE,
        codec: AbstractCodec | type[AbstractCodec] | None = None,
        connect_timeout: float = 2,
        reconnect_timeout: float = 3,
        invoke_timeout: float = 20,
        *,
        url: str | Sequence[str] | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_buffered_notifications: int = 10_000,
        max_pending_calls: int = DEFAULT_MAX_PENDING_CALLS,
        fastpath: bool | None = None,
        transport: TransportFactory = AmqpWorker,
    ) -> None:
        if host is not None and url is not None:
            raise ConfigurationError("give the broker URL as host= or url=, not both")
        given = url if url is not None else host if host is not None else DEFAULT_URL
        # The URL is AMQP's business: another transport (e.g. in-memory) takes what it likes.
        if transport is AmqpWorker:
            self._url = ",".join(check_broker_urls(given))
        else:
            self._url = given if isinstance(given, str) else ",".join(given)
        self._exchange = validate_exchange_name(exchange)
        self._codec = _as_codec(codec)
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._invoke_timeout = _check_timeout(invoke_timeout)
        self._max_message_size = (
            None if max_message_size is None else _check_limit("max_message_size", max_message_size)
        )
        self._max_buffered = _check_limit("max_buffered_notifications", max_buffered_notifications)
        self._calls = CallTable(
            self._url,
            self._exchange,
            max_message_size=self._max_message_size,
            max_pending=_check_limit("max_pending_calls", max_pending_calls),
        )
        self._fastpath = fastpath
        self._transport = transport
        self._lock = threading.Lock()
        self._closed = False
        # The I/O thread refers to the call table, never to the client: when the client is
        # garbage-collected without stop(), this closes its connection and ends the thread.
        finalizer = weakref.finalize(self, self._calls.abandon)
        finalizer.atexit = False

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
        calls = self._calls
        with self._lock:
            worker, calls.worker = calls.worker, None
            if worker is not None:
                calls.last_worker = worker
            self._closed = True
        if worker is not None and worker.fork_generation == _process.fork_generation():
            if worker.buffered:
                worker.wait_confirmed(timeout)
            worker.stop(timeout)
        calls.fail_pending(ClientClosedError("the client was stopped"), only_sent=False)
        calls.callbacks.close()

    def __enter__(self) -> Client:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Start if needed and wait until the connection is ready; return whether it is.

        Raises :class:`AccessRefusedError` as soon as the broker refuses the credentials.
        """
        return self._calls.wait_settled(self._get_worker(), timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the broker confirmed every notification sent so far; return whether it did.

        Notifications are delivered at least once: they wait in a bounded buffer while the
        connection is down and are published again if it drops before the broker confirms them.
        """
        worker = self._calls.worker
        return worker is None or worker.wait_confirmed(timeout)

    @property
    def pending_calls(self) -> int:
        """How many calls are waiting for their reply."""
        return len(self._calls.pending)

    @property
    def stats(self) -> dict[str, int]:
        """Counters of what this client dropped or sent twice.

        ``dropped_replies``: replies to calls that had already ended (timed out, failed, or a
        duplicate after a redelivery); ``republished``: notifications published again after a
        reconnect; ``nacked``: notifications the broker refused once (published again);
        ``abandoned``: notifications still unconfirmed when the client stopped.
        """
        worker = self._calls.worker or self._calls.last_worker
        counters = dict(worker.stats) if worker is not None else {}
        return {"dropped_replies": self._calls.dropped_replies, **counters}

    @property
    def is_connected(self) -> bool:
        """True while the connection and the reply queue are up."""
        worker = self._calls.worker
        return worker is not None and worker.ready.is_set()

    @property
    def _worker(self) -> Transport | None:
        """The current I/O worker, if started (for isc's own tools)."""
        return self._calls.worker

    def _get_worker(self) -> Transport:
        worker = self._calls.worker
        if (
            worker is not None
            and worker.fork_generation == _process.fork_generation()
            and worker.gevent_mode == _process.gevent_patched()
        ):
            return worker
        return self._new_worker()

    def _new_worker(self) -> Transport:
        """Start a worker: the first, or one for a forked child or a newly patched process."""
        calls = self._calls
        if calls.worker is not None and calls.worker.fork_generation != _process.fork_generation():
            # A forked child: the parent's worker, its thread gone, shares the parent's
            # sockets. Close this process's copies without a word on the wire; the calls
            # it was waiting for are the parent's.
            old, calls.worker = calls.worker, None
            self._lock = threading.Lock()  # it may have been held by a thread of the parent
            old.abandon_after_fork()
            calls.fail_pending(ConnectionLostError("the process forked"), only_sent=False)
            calls.callbacks = type(calls.callbacks)()
        with self._lock:
            worker = calls.worker
            if worker is not None and worker.gevent_mode != _process.gevent_patched():
                # gevent patched the process after this worker started on a real thread:
                # its loop would block the hub. Hand over to a worker built for gevent.
                log.info("gevent's monkey patching was applied: reconnecting the isc client")
                calls.worker = None
                worker.stop(timeout=1)
                calls.fail_pending(
                    ConnectionLostError("reconnecting after gevent's monkey patching"),
                    only_sent=True,
                )
                self._lock = threading.Lock()
                worker = None
            if worker is not None:
                return worker
            if self._closed:
                raise ClientClosedError("the client was stopped; create a new Client")
            worker = self._transport(
                self._url,
                self._exchange,
                connect_timeout=self._connect_timeout,
                reconnect_timeout=self._reconnect_timeout,
                setup=calls.setup_channel,
                on_return=calls.on_return,
                on_disconnect=calls.on_disconnect,
                max_buffered=self._max_buffered,
                fastpath=self._fastpath,
                on_refused=calls.on_refused,
            )
            worker.on_ready = calls.on_ready
            calls.worker = worker
            worker.start()
            return worker

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
        """Like :meth:`invoke`, with explicit arguments and a per-call ``timeout``.

        The call returns as soon as its own reply is read, whichever thread reads it, and
        never later than ``timeout`` seconds after it was made.
        """
        timeout = self._invoke_timeout if timeout is None else _check_timeout(timeout)
        deadline = time.monotonic() + timeout
        # No timer on the I/O thread: this thread waits, and expires the call itself.
        future = self._send(service, method, args, kwargs, timeout, timer=False)
        if not future.done():
            worker = self._calls.worker
            if worker is not None:
                # Reads the reply itself if it can. A call unanswered for a while checks,
                # once, that a node consumes its service's queue (see check_consumers).
                check_at = deadline - timeout + NO_CONSUMER_CHECK_AFTER
                if check_at < deadline and not worker.wait_for(future, check_at):
                    self._check_consumers(worker, future)
                    worker.wait_for(future, deadline)
                elif not future.done():
                    worker.wait_for(future, deadline)
            else:
                future._wait_done(max(0.0, deadline - time.monotonic()))
        if not future.done():
            error = self._calls.timeout_error(future.cannonical_name, timeout)
            if future.reject(error):  # else its reply won the race: return it
                del future  # the traceback holds this frame: keep the future out of that cycle
                raise error
        return future.result(0)

    def _check_consumers(self, worker: Transport, future: FutureResult) -> None:
        """Have the loop check that a node consumes the queue of ``future``'s call."""
        calls = self._calls
        cid = future.extra["correlation_id"]
        call = calls.pending.get(cid)
        if call is not None:
            worker.call_soon(lambda: calls.check_consumers(worker, cid, call))

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
        future_type: type[FutureResult] = FutureResult,
    ) -> FutureResult:
        """Send a call; with ``timer``, the I/O thread fails it after ``timeout`` seconds.

        ``future_type``: the class of the returned future (``isc.client.aio`` finishes
        asyncio futures from its own).
        """
        validate_service_name(self._exchange, service)
        codec = self._codec
        name = f"{service}.{method}"
        deadline = time.time() + timeout
        request = Request(method, tuple(args), dict(kwargs or {}), deadline=deadline)
        inject_trace_context(request.headers)  # W3C traceparent when OpenTelemetry is installed
        envelope = request.encode(codec)  # encode errors reach the caller right here
        self._check_size(envelope, f"the request to {service}.{method}")
        future = future_type(name, correlation_id=request.correlation_id)
        call = PendingCall(future, codec, name, timeout)
        cid = request.correlation_id
        worker = self._get_worker()
        calls = self._calls
        calls.add(cid, call)

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
            on_taken=(lambda: calls.arm_timer(worker, cid, call)) if timer else None,
        )
        try:
            worker.submit(call.outgoing)
        except (ClientClosedError, AccessRefusedError) as exc:
            calls.pop(cid)
            future.reject(exc)
            raise
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
            # Persistent: a service-mode listener's durable queue keeps it across a restart.
            Outgoing(
                envelope,
                fanout_exchange_name(self._exchange),
                "",
                confirm=True,
                persistent=True,
            )
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
