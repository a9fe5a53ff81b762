"""The Node: hosts services, runs their calls and listeners in bounded greenlet pools, runs timers.

The node owns one AMQP connection through the client's I/O worker, which under gevent's
monkey patching runs as a greenlet: every pika call happens on that loop. Request greenlets
never touch the channel; they hand replies and acks back to the loop (``worker.submit``).
The loop never waits for a free slot: calls and listeners have pools of their own, and what
finds its pool full waits in that pool's backlog (see :class:`TaskPool`).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import gevent
import gevent.event
import pika.channel
import pika.spec

from isc.client.internal import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AmqpChannel,
    AmqpWorker,
    Outgoing,
    Transport,
    TransportFactory,
    UndecodableProperties,
    received_envelope,
)
from isc.core import (
    DEFAULT_EXCHANGE,
    AbstractCodec,
    AccessRefusedError,
    CodecException,
    CodecNotAllowedError,
    CodecRegistry,
    ConfigurationError,
    DecodeError,
    Envelope,
    IscError,
    JSONCodec,
    MessageTooLargeError,
    Notification,
    PickleCodec,
    Reply,
    Request,
    TypedJSONCodec,
    broadcast_queue_name,
    check_broker_urls,
    dead_letter_queue_name,
    describe_payload,
    fanout_exchange_name,
    listener_queue_name,
    redact_url,
    service_queue_name,
    timer_queue_name,
    validate_exchange_name,
)

from ._exporter import DEFAULT_METRICS_HOST, MetricsServer, require_prometheus, serve_metrics
from ._logcontext import LOG_FORMAT, LogContextFilter
from ._metrics import NodeMetrics
from ._observe import Observer
from ._services import MethodError, ServiceListener, ServiceTable
from ._tasks import TaskPool

__all__ = ["Node", "HOOK_NAMES"]

log = logging.getLogger("isc.server")

#: The hooks a node runs around every call (and timer tick), as isclib 1.x.
HOOK_NAMES = ("pre_call", "post_success", "post_error")

#: ``queue_type`` -> (durable, queue arguments) of the service queues a node declares.
#: ``legacy`` is isclib 1.x's declaration (transient, shared), so old and new nodes can share
#: a queue; RabbitMQ 4.3 refuses it by default, and clusters want ``durable`` or ``quorum``.
#: ``auto`` (the default) declares ``legacy`` queues where the broker allows them and
#: ``durable`` ones where it refuses them (see :data:`TRANSIENT_QUEUES_REFUSED`).
QUEUE_TYPES: dict[str, tuple[bool, dict[str, Any] | None]] = {
    "auto": (False, None),
    "legacy": (False, None),
    "durable": (True, None),
    "quorum": (True, {"x-queue-type": "quorum"}),
}

#: The deprecated RabbitMQ feature whose refusal (541 INTERNAL_ERROR, closing the
#: connection) tells a ``queue_type="auto"`` node to declare durable queues instead: RabbitMQ
#: 4.3.0 and later deny transient non-exclusive queues unless
#: ``deprecated_features.permit.transient_nonexcl_queues = true``.
TRANSIENT_QUEUES_REFUSED = "transient_nonexcl_queues"

_QUEUE_IN_ERROR = re.compile(r"queue '([^']+)'")

#: Default bound of the notifications waiting for a free listener slot.
DEFAULT_MAX_QUEUED_NOTIFICATIONS = 1000
#: After logging a dropped notification, the node logs further drops as one summary line at
#: most this often (seconds), however many there are.
DROP_LOG_INTERVAL = 10.0
#: How many reply queues known to be gone (their caller's connection closed) a node remembers.
MAX_GONE_REPLY_QUEUES = 10_000

Hook = Callable[..., Any]

#: The header a ``mode="service"`` notification carries once retried: how many times its
#: listener failed so far.
RETRIES_HEADER = "x-isc-retries"
#: Unacked notifications a service-mode listener's consumer may hold per listener slot: with
#: one per slot, a free slot waits a round trip to the broker for its next notification.
SERVICE_PREFETCH_PER_SLOT = 8
#: The content type of a cluster timer's lease token (an empty message).
LEASE_CONTENT_TYPE = "application/x-isc-lease"
_MAX_QUEUE_NAME = 255


def _check_queue_name(name: str, what: str) -> str:
    if len(name.encode()) > _MAX_QUEUE_NAME:
        raise ConfigurationError(
            f"the queue of {what} would be named {name!r}, over AMQP's {_MAX_QUEUE_NAME} "
            "bytes: use a shorter service, method or event name"
        )
    return name


class _ServiceConsumer:
    """A ``mode="service"`` listener as the node consumes it: its queue and dead-letter queue."""

    __slots__ = ("dead_letter_queue", "listener", "queue", "what")

    def __init__(self, exchange: str, listener: ServiceListener) -> None:
        names = (exchange, listener.service, listener.method, listener.event)
        what = f"listener {listener.service}.{listener.method} for {listener.event!r}"
        self.what = what
        self.listener = listener
        self.queue = _check_queue_name(listener_queue_name(*names), what)
        self.dead_letter_queue = _check_queue_name(dead_letter_queue_name(*names), what)


class _ClusterTimer:
    """A ``@cluster_timer`` as the node runs it: the lease it may hold, and its ticking loop.

    ``lease`` is (channel generation, delivery tag) of the token this node holds unacked, or
    None: only the holder ticks.
    """

    __slots__ = ("fn", "lease", "loop", "name", "period", "queue")

    def __init__(self, exchange: str, period: float, name: str, fn: Callable[[], Any]) -> None:
        service, method = name.split(".", 1)
        self.period = period
        self.name = name
        self.fn = fn
        self.queue = _check_queue_name(
            timer_queue_name(exchange, service, method), f"cluster timer {name}"
        )
        self.lease: tuple[int, int] | None = None
        self.loop: gevent.Greenlet | None = None


def _default_codecs() -> list[AbstractCodec]:
    codecs: list[AbstractCodec] = [JSONCodec(), TypedJSONCodec()]
    try:
        from isc.codecs import MsgpackCodec

        codecs.append(MsgpackCodec())
    except (ImportError, CodecException):
        pass  # msgpack not installed: the node simply does not accept it
    return codecs


class Node:
    """A process hosting isc services.

    :param hostname: the broker host, used when ``url`` is not given (isclib 1.x).
    :param url: the broker URL, ``amqp://user:password@host:port/vhost`` (or ``amqps://``),
        a password's reserved characters percent-encoded; a malformed URL raises
        :class:`~isc.core.ConfigurationError` at once (with the default transport). A broker
        that refuses the credentials stops the node: :meth:`run` raises
        :class:`~isc.core.AccessRefusedError`. Several URLs (the members of a RabbitMQ
        cluster), as a list or one comma-separated string: the node connects to one of them
        and fails over to the next when it cannot connect or loses its connection
        (docs/cluster.md).
    :param exchange: the isc exchange; services and clients must agree on it.
    :param thread_pool_size: how many calls run at once (the greenlet pool and the prefetch).
    :param listener_pool_size: how many listeners (``@on`` handlers) run at once, apart from
        calls (default: ``thread_pool_size``).
    :param max_queued_notifications: how many listener runs (one per listener of each
        notification) may wait for a free listener slot. A notification that finds no room
        for all its listeners is dropped (the newest; those waiting keep their place),
        logged (rate-limited) and counted as ``dropped_notifications``. ``mode="service"``
        listeners are never dropped: each holds at most ``8 * listener_pool_size`` unacked
        notifications, and no more than ``listener_pool_size + max_queued_notifications``
        (its prefetch); they wait in the backlog past this bound if they must.
    :param codecs: the codecs accepted (default: json, typedjson and msgpack if installed).
    :param allow_pickle: accept the pickle codec; decoding pickle runs code chosen by the
        sender, so enable it only when every peer on the broker is trusted.
    :param drain_timeout: how long :meth:`stop` lets in-flight calls finish.
    :param reconnect_timeout: the longest pause between reconnection attempts.
    :param max_message_size: the largest request, notification or reply body in bytes
        (``None``: no limit); a larger request gets an error reply without being decoded.
    :param queue_type: how service queues are declared: ``auto`` (the default: isclib 1.x's
        transient queues where the broker allows them, so old and new nodes share a queue,
        and durable ones where it refuses them, as RabbitMQ 4.3+ does by default), ``legacy``
        (always 1.x's; a broker that refuses them stops the node with a
        :class:`~isc.core.ConfigurationError`), ``durable`` or ``quorum`` (replicated, for
        RabbitMQ clusters). Every node of a service must agree; a node that meets the queue
        declared otherwise logs it and consumes the queue as it is. The durable queues of
        ``mode="service"`` listeners and ``@cluster_timer`` leases are quorum queues with
        ``quorum`` and classic durable ones otherwise (docs/delivery-modes.md).
    :param fastpath: drive pika through isc's fast path (``True``) or stock pika only
        (``False``); ``None`` follows ``ISC_PIKA_FASTPATH`` (on unless it is ``0``). See
        docs/concepts.md.
    :param allow_inspect: answer the reserved ``_inspect`` method, which tells any caller the
        exposed methods' signatures (names and kinds; default values are never shown), the
        listeners and this node's metrics. ``False`` refuses it with a ``PermissionError``.
    :param transport: what carries the messages, built with the keyword arguments
        ``AmqpWorker`` takes (default ``None``: ``AmqpWorker``, a pika connection to ``url``).
        For tests and embedding: e.g. an in-memory broker's
        (:class:`isc.client.testing.memory.MemoryBroker`) ``transport``.
    :param metrics_port: serve Prometheus metrics (``/metrics``) and the Kubernetes probes
        ``/healthz`` and ``/readyz`` over HTTP on this port while the node runs (``0``: a free
        port; default ``None``: no HTTP endpoint). Needs ``isc-server[prometheus]``; see
        :func:`serve_metrics`.
    :param metrics_host: the address the metrics endpoint listens on (default: every
        interface).
    """

    def __init__(
        self,
        hostname: str = "127.0.0.1",
        url: str | Sequence[str] | None = None,
        exchange: str = DEFAULT_EXCHANGE,
        thread_pool_size: int = 8,
        *,
        codecs: Iterable[AbstractCodec] | None = None,
        allow_pickle: bool = False,
        drain_timeout: float = 10.0,
        reconnect_timeout: float = 3.0,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        queue_type: str = "auto",
        listener_pool_size: int | None = None,
        max_queued_notifications: int = DEFAULT_MAX_QUEUED_NOTIFICATIONS,
        fastpath: bool | None = None,
        transport: TransportFactory | None = None,
        metrics_port: int | None = None,
        metrics_host: str = DEFAULT_METRICS_HOST,
        allow_inspect: bool = True,
    ) -> None:
        if not isinstance(thread_pool_size, int) or thread_pool_size < 1:
            raise ConfigurationError(
                f"thread_pool_size must be a positive int, got {thread_pool_size!r}"
            )
        if listener_pool_size is None:
            listener_pool_size = thread_pool_size
        if not isinstance(listener_pool_size, int) or listener_pool_size < 1:
            raise ConfigurationError(
                f"listener_pool_size must be a positive int, got {listener_pool_size!r}"
            )
        if not isinstance(max_queued_notifications, int) or max_queued_notifications < 0:
            raise ConfigurationError(
                f"max_queued_notifications must be an int >= 0, got {max_queued_notifications!r}"
            )
        url = url if url is not None else f"amqp://guest:guest@{hostname}/"
        # The URL is AMQP's business: another transport (e.g. in-memory) takes what it likes.
        #: The broker URL (several: comma-separated).
        self.url = (
            ",".join(check_broker_urls(url))
            if transport is None
            else url
            if isinstance(url, str)
            else ",".join(url)
        )
        self.exchange = validate_exchange_name(exchange)
        self.concurrency = thread_pool_size
        self.drain_timeout = drain_timeout
        if max_message_size is not None and (
            not isinstance(max_message_size, int) or max_message_size < 1
        ):
            raise ConfigurationError(
                f"max_message_size must be a positive int or None, got {max_message_size!r}"
            )
        self.max_message_size = max_message_size
        if queue_type not in QUEUE_TYPES:
            raise ConfigurationError(
                f"queue_type must be one of {', '.join(QUEUE_TYPES)}, got {queue_type!r}"
            )
        self.queue_type = queue_type
        #: How service queues are declared now: ``queue_type``, or ``durable`` once an
        #: ``auto`` node found the broker refusing transient ones.
        self.declared_queue_type = "legacy" if queue_type == "auto" else queue_type
        #: Why the node stopped by itself (credentials or queue type refused), raised by run().
        self.failure: IscError | None = None
        if metrics_port is not None:
            if not isinstance(metrics_port, int) or not 0 <= metrics_port <= 65535:
                raise ConfigurationError(
                    f"metrics_port must be a port number (0-65535) or None, got {metrics_port!r}"
                )
            require_prometheus()
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        #: The HTTP endpoint of metrics and probes, once the node runs with ``metrics_port``.
        self.metrics_server: MetricsServer | None = None
        #: The fast path switch (None: the ``ISC_PIKA_FASTPATH`` environment variable decides).
        self.fastpath = fastpath
        self._transport = transport
        #: Service queues that exist with other arguments: declared passively, consumed as is.
        self._passive_queues: set[str] = set()
        self.codecs = CodecRegistry(
            list(codecs) if codecs is not None else _default_codecs(), allow_pickle=allow_pickle
        )
        if not self.codecs.knows(PickleCodec.content_type):
            # Known but refused unless allow_pickle: callers get a refusal that says why.
            self.codecs.register(PickleCodec())
        self.hooks: dict[str, list[Hook]] = {name: [] for name in HOOK_NAMES}
        #: calls, errors and latencies per handler, and dropped messages (``_inspect`` shows them)
        self.metrics = NodeMetrics()
        self._observer = Observer(self.metrics, self.exchange)
        self._services = ServiceTable(
            self.exchange, metrics=self.metrics.snapshot, allow_inspect=allow_inspect
        )
        self._queues: dict[str, str] = {}  # queue name -> service name
        # Requests: the prefetch bounds them, so their backlog needs no bound of its own (it
        # holds requests only after a reconnect, while the old channel's calls still run).
        self._pool = TaskPool(thread_pool_size)
        # Listeners: notifications are auto-acked, so nothing but this backlog bounds them.
        self._listener_pool = TaskPool(listener_pool_size, max_queued=max_queued_notifications)
        self._drops_unlogged = 0  # dropped notifications not logged yet (see _drop_notification)
        self._drop_log_timer: gevent.Greenlet | None = None
        # reply_to -> requests skipped since the broker returned a reply to it as unroutable
        self._gone_reply_queues: OrderedDict[str, int] = OrderedDict()
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._stopping = False
        self._forced = False  # a second stop signal cut the drain short
        self._signals_installed = False
        self._listeners: dict[str, list[Callable[..., Any]]] = {}
        self._service_consumers: list[_ServiceConsumer] = []
        self._cluster_timers: list[_ClusterTimer] = []
        self._timers: list[gevent.Greenlet] = []
        #: The consumer tags of the current channel: the queue each consumes, what it is (for
        #: the log line) and how to declare and consume it again should the broker cancel it.
        self._consumers: dict[str, tuple[str, str, Callable[[AmqpChannel], None]]] = {}
        self._reconnect_timeout = reconnect_timeout
        self._worker: Transport | None = None
        # Acks (I/O loop only): the delivery tags of the current channel whose request runs,
        # and those finished but not acked yet. See _flush_acks.
        self._running: set[int] = set()
        self._finished: list[int] = []
        self._ack_generation = 0

    # -- configuration -----------------------------------------------------------------------

    def register_service(self, service: object) -> None:
        """Host ``service`` (an object with a ``name``); call before :meth:`run`."""
        name = self._services.register(service)
        self._queues[service_queue_name(self.exchange, name)] = name

    def register_codec(self, codec: AbstractCodec) -> None:
        """Accept ``codec`` too (pickle still needs ``allow_pickle``)."""
        self.codecs.register(codec)

    def add_hook(self, name: str, fn: Hook | None = None) -> Any:
        """Register a hook: ``pre_call(method, args, kwargs)``, ``post_success(method, args,
        kwargs, result)`` or ``post_error(method, args, kwargs, exc)``. Usable as a decorator."""
        if name not in self.hooks:
            raise ConfigurationError(f"unknown hook {name!r}; hooks are {', '.join(HOOK_NAMES)}")

        def add(hook: Hook) -> Hook:
            self.hooks[name].append(hook)
            return hook

        return add(fn) if fn is not None else add

    def set_logging_level(self, level: int | str) -> None:
        """Set the level of isc's loggers (``isc`` and below)."""
        logging.getLogger("isc").setLevel(level)

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        """Connect, serve until :meth:`stop` (or SIGTERM/SIGINT in the main thread), return.

        A program that configured no logging (no handler on isc's loggers or the root logger)
        still sees the node: while it runs, isc's INFO lines and above go to stderr.
        """
        if self._worker is not None:
            raise ConfigurationError("this node is already running")
        shown = _log_to_stderr_if_unconfigured()
        try:
            self._run()
        finally:
            if shown is not None:
                shown()

    def _run(self) -> None:
        if not self._services.services:
            log.warning("node has no services registered; it will only run listeners/timers")
        self._check_listener_capacity()
        if self.metrics_port is not None:  # first: /readyz says "not ready" while connecting
            self.metrics_server = serve_metrics(self, self.metrics_port, self.metrics_host)
        try:
            self._open_transport()
        except BaseException:
            if self.metrics_server is not None:
                self.metrics_server.stop()
            raise
        self._install_signal_handlers()
        self._start_timers()
        log.info(
            "node serving %s on %s (exchange %r, %d call(s) and %d listener(s) at a time, "
            "codecs %s)",
            ", ".join(sorted(self._services.services)) or "nothing",
            redact_url(self.url),
            self.exchange,
            self.concurrency,
            self._listener_pool.size,
            ", ".join(self.codecs.names),
        )
        try:
            while not self._stopped.wait(1.0):
                pass
        finally:
            if not self._stopped.is_set():  # interrupted (KeyboardInterrupt): still clean up
                self.stop()
        if self.failure is not None:
            raise self.failure

    def _open_transport(self) -> Transport:
        """Build the transport and connect: :meth:`run` without signals, timers or the wait
        (``ServiceHarness`` serves a node's calls with this alone)."""
        self._listeners = self._services.listeners()
        self._service_consumers = [
            _ServiceConsumer(self.exchange, listener)
            for listener in self._services.service_listeners()
        ]
        self._cluster_timers = [
            _ClusterTimer(self.exchange, period, name, fn)
            for period, name, fn in self._services.cluster_timers()
        ]
        factory: TransportFactory = self._transport or AmqpWorker
        worker = factory(
            self.url,
            self.exchange,
            connect_timeout=5,
            reconnect_timeout=self._reconnect_timeout,
            setup=self._setup_channel,
            on_return=self._on_return,
            on_disconnect=self._on_disconnect,
            name="isc-node",
            logger=log,
            confirms=False,  # replies are safe without: the request's ack follows them
            on_channel_error=self._on_channel_error,
            gevent=True,
            fastpath=self.fastpath,
            on_refused=self._on_refused,
        )
        self._worker = worker
        worker.on_flushed = self._flush_acks
        worker.start()
        return worker

    def _check_listener_capacity(self) -> None:
        """Warn about events with more listeners than the listener pool and backlog hold:
        their notifications are always dropped."""
        pool = self._listener_pool
        capacity = pool.size + (pool.max_queued or 0)
        for event, listeners in sorted(self._listeners.items()):
            if len(listeners) > capacity:
                log.warning(
                    "event %r has %d listeners on this node, more than listener_pool_size + "
                    "max_queued_notifications (%d): its notifications will all be dropped",
                    event,
                    len(listeners),
                    capacity,
                )

    def wait_for_ready(self, timeout: float | None = None) -> bool:
        """Wait until the node consumes its queues; return whether it does."""
        return self._ready.wait(timeout)

    def is_ready(self) -> bool:
        """Whether the node serves now: connected, consuming its queues, and not stopping.

        False before the first connection, while reconnecting and from :meth:`stop` on (the
        ``/readyz`` probe).
        """
        return self._ready.is_set() and not self._stopping

    def is_alive(self) -> bool:
        """Whether the node runs: started, not stopped, its connection loop not ended.

        Stays true while it reconnects and while it drains (the ``/healthz`` probe).
        """
        worker = self._worker
        if worker is None or self._stopped.is_set():
            return False
        return self._stopping or not worker.stopped.is_set()

    def stop(self) -> None:
        """Stop consuming, let in-flight calls and listeners finish (``drain_timeout``, which
        also covers the ones waiting for a slot), stop timers, close."""
        if self._stopping:
            self._stopped.wait(self.drain_timeout + 10)
            return
        self._stopping = True
        worker = self._worker
        if worker is not None and worker.refused is None:  # else it stopped by itself
            worker.call_soon(self._cancel_consumers)
        calls, listeners = len(self._pool), len(self._listener_pool)
        if calls or listeners:
            log.info(
                "stopping: waiting up to %.0fs for %d call(s) and %d listener(s)%s",
                self.drain_timeout,
                calls,
                listeners,
                "; press Ctrl-C again to stop at once" if self._signals_installed else "",
            )
        deadline = time.monotonic() + self.drain_timeout
        if not self._pool.join(timeout=self.drain_timeout):
            log.warning("stopping: %d call(s) did not finish in time", len(self._pool))
            self._pool.kill(timeout=1)  # the broker redelivers what never ran
        if not self._listener_pool.join(timeout=max(0.0, deadline - time.monotonic())):
            log.warning("stopping: %d listener(s) did not finish in time", len(self._listener_pool))
            for _ in range(self._listener_pool.kill(timeout=1)):
                self.metrics.count("dropped_notifications")  # queued, never ran
        if self._drop_log_timer is not None:
            self._drop_log_timer.kill(block=False)
            self._log_dropped_notifications()
        loops = [timer.loop for timer in self._cluster_timers if timer.loop is not None]
        gevent.killall([*self._timers, *loops], block=True, timeout=1)
        if worker is not None:
            worker.stop()
        self._ready.clear()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        log.info("node stopped")
        self._stopped.set()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                gevent.signal_handler(signum, self._on_stop_signal)
            except (ValueError, OSError):  # pragma: no cover - not the main thread
                return
        self._signals_installed = True

    def _on_stop_signal(self) -> None:
        """SIGTERM or SIGINT: the first stops gracefully, a second one while the node drains
        stops it at once (the calls still running are cancelled; the broker redelivers them)."""
        if not self._stopping:
            gevent.spawn(self.stop)
        elif not self._stopped.is_set() and not self._forced:
            self._forced = True
            log.warning(
                "stopping at once: cancelling %d call(s) and %d listener(s); the broker "
                "redelivers the calls",
                len(self._pool),
                len(self._listener_pool),
            )
            gevent.spawn(self._cancel_in_flight)

    def _cancel_in_flight(self) -> None:
        """Kill every running or waiting call and listener: :meth:`stop` stops draining."""
        self._pool.kill(timeout=1)
        for _ in range(self._listener_pool.kill(timeout=1)):
            self.metrics.count("dropped_notifications")  # queued, never ran

    # -- AMQP topology (I/O loop) ------------------------------------------------------------

    def _setup_channel(self, channel: AmqpChannel, ready: Callable[[], None]) -> None:
        self._forget_queued_requests()
        channel.exchange_declare(
            self.exchange, exchange_type="direct", durable=False, auto_delete=False
        )
        fanout = fanout_exchange_name(self.exchange)
        channel.exchange_declare(fanout, exchange_type="fanout", durable=False, auto_delete=False)
        self._consumers = {}
        channel.add_on_cancel_callback(self._on_consumer_cancelled)
        for queue in self._queues:
            self._consume_service_queue(channel, queue)
        self._declare_service_listeners(channel, fanout)
        self._declare_cluster_timers(channel)

        def consuming(_frame: object) -> None:
            self._ready.set()
            ready()

        self._consume_broadcast_queue(channel, consuming)

    def _consume_service_queue(self, channel: AmqpChannel, queue: str) -> None:
        """Declare service queue ``queue`` (as ``queue_type`` says), bind and consume it."""
        if queue in self._passive_queues:
            channel.queue_declare(queue, passive=True)
        else:
            durable, arguments = QUEUE_TYPES[self.declared_queue_type]
            channel.queue_declare(
                queue, durable=durable, exclusive=False, auto_delete=False, arguments=arguments
            )
        channel.queue_bind(queue, self.exchange, routing_key=queue)
        channel.basic_qos(prefetch_count=self.concurrency)  # the prefetch of this consumer
        tag = channel.basic_consume(queue, self._on_request)
        again = partial(self._consume_service_queue, queue=queue)
        self._consumers[tag] = (queue, f"service {self._queues[queue]!r}", again)

    def _consume_broadcast_queue(
        self, channel: AmqpChannel, callback: Callable[[Any], None] | None = None
    ) -> None:
        """Declare a new exclusive notification queue, bind it to the fanout and consume it."""
        broadcast = broadcast_queue_name()
        channel.queue_declare(broadcast, exclusive=True, auto_delete=True)
        channel.queue_bind(broadcast, fanout_exchange_name(self.exchange))
        tag = channel.basic_consume(broadcast, self._on_broadcast, auto_ack=True, callback=callback)
        self._consumers[tag] = (broadcast, "notifications", self._consume_broadcast_queue)

    def _on_consumer_cancelled(self, frame: Any) -> None:
        """The broker cancelled one of the node's consumers (``basic.cancel``): its queue was
        deleted, or the cluster member holding it is gone. Declare the queue again (a deleted
        service queue is recreated; a new notification queue replaces a deleted one) and
        consume it, on the same channel, at once. Should the declaration fail (the queue's
        member is down), the broker closes the channel and the node reconnects."""
        tag = getattr(frame.method, "consumer_tag", None)
        consumer = self._consumers.pop(tag, None) if tag else None
        worker = self._worker
        channel = worker.channel if worker is not None else None
        if consumer is None or self._stopping or channel is None or not channel.is_open:
            return
        queue, what, again = consumer
        log.warning(
            "the broker cancelled this node's consumer of %s (queue %r deleted, or its "
            "cluster member is gone); declaring and consuming it again",
            what,
            queue,
        )
        again(channel)

    def _on_channel_error(self, reason: BaseException) -> bool:
        """A 406 on a service queue: it exists with other arguments; consume it as it is. A
        541 refusing transient queues: declare durable ones (``auto``) or stop (``legacy``).

        Returns True when it logged why the broker closed the connection."""
        code = getattr(reason, "reply_code", None)
        text = str(getattr(reason, "reply_text", ""))
        if code == 541 and TRANSIENT_QUEUES_REFUSED in text:
            return self._on_transient_queues_refused()
        match = _QUEUE_IN_ERROR.search(text)
        queue = match.group(1) if match else None
        if code == 406 and queue is not None and queue in self._durable_queue_names():
            self._fail(
                ConfigurationError(
                    f"queue {queue!r} exists with other arguments than this node declares "
                    f"({text}): give every node of the service the same queue_type, or delete "
                    "the queue (and its dead-letter queue) to redeclare it"
                )
            )
            return True
        if queue not in self._queues:
            return False
        if code == 406 and queue not in self._passive_queues:
            self._passive_queues.add(queue)
            log.warning(
                "queue %r exists with other arguments than queue_type=%r declares (%s); "
                "consuming it as it is. Give every node of the service the same queue_type, "
                "or delete the queue to redeclare it",
                queue,
                self.queue_type,
                getattr(reason, "reply_text", reason),
            )
        elif code == 404 and queue in self._passive_queues:
            self._passive_queues.discard(queue)  # it is gone (a broker restart): declare it
        elif code == 406:
            log.error("cannot consume queue %r: %s", queue, getattr(reason, "reply_text", reason))
        return False

    def _durable_queue_names(self) -> set[str]:
        """The queues of service-mode listeners and cluster timers."""
        names = {timer.queue for timer in self._cluster_timers}
        for consumer in self._service_consumers:
            names.update((consumer.queue, consumer.dead_letter_queue))
        return names

    def _on_transient_queues_refused(self) -> bool:
        """The broker refused isclib 1.x's transient service queues (RabbitMQ 4.3+)."""
        if self.declared_queue_type != "legacy":
            return False  # a queue this node does not declare (cannot happen): the worker logs
        if self.queue_type == "auto":
            self.declared_queue_type = "durable"
            log.warning(
                "the broker refuses transient service queues (deprecated feature %s, denied "
                "by default since RabbitMQ 4.3): declaring them durable instead; isclib 1.x "
                "nodes cannot share them on this broker (see queue_type in docs/reliability.md)",
                TRANSIENT_QUEUES_REFUSED,
            )
            return True
        self._fail(
            ConfigurationError(
                f"the broker refuses queue_type='legacy' (transient service queues: deprecated "
                f"feature {TRANSIENT_QUEUES_REFUSED}, denied by default since RabbitMQ 4.3); "
                "use queue_type='auto' or 'durable' (isc run --queue-type), or permit it on "
                f"every broker node: deprecated_features.permit.{TRANSIENT_QUEUES_REFUSED} = true"
            )
        )
        return True

    def _on_refused(self, error: AccessRefusedError) -> None:
        """The broker refused the credentials (the transport logged it and gave up): stop."""
        self._fail(error, logged=True)

    def _fail(self, error: IscError, *, logged: bool = False) -> None:
        """Stop the node for a reason retrying cannot mend; :meth:`run` raises ``error``."""
        if self.failure is not None or self._stopping:
            return
        if not logged:
            log.error("%s", error)
        self.failure = error
        gevent.spawn(self.stop)

    def _cancel_consumers(self) -> None:
        worker = self._worker
        channel = worker.channel if worker is not None else None
        if channel is None or not channel.is_open:
            return
        for tag in list(self._consumers):
            channel.basic_cancel(tag)

    def _on_disconnect(self, error: BaseException) -> None:
        self._ready.clear()
        log.warning("node lost its connection (%s); in-flight calls will be redelivered", error)
        self._forget_queued_requests()
        for timer in self._cluster_timers:
            timer.lease = None  # the broker gave it back: it stops ticking here

    def _forget_queued_requests(self) -> None:
        """Drop the requests still waiting for a slot: their channel is gone, so the broker
        delivers them again (running them too would run them twice)."""
        forgotten = self._pool.clear_queued()
        if forgotten:
            log.info(
                "%d request(s) waiting for a free slot were left to the broker, which "
                "redelivers them",
                forgotten,
            )

    def _on_return(
        self, method: pika.spec.Basic.Return, properties: pika.spec.BasicProperties
    ) -> None:
        """The broker returned a reply (published ``mandatory``): its reply queue is gone.

        A client's reply queue is exclusive and auto-deleted, so it goes when the caller's
        connection does, and its name is never used again: the node remembers it (a bounded
        number of them) and skips the requests that still name it (see :meth:`_on_request`).
        """
        queue = method.routing_key  # replies are published with routing key = reply_to
        self.metrics.count("unroutable_replies")
        if not queue or queue in self._gone_reply_queues:
            return
        log.warning(
            "a reply to %r was returned (%s %s): its caller's connection is gone; "
            "requests still waiting with that reply_to are skipped",
            queue,
            method.reply_code,
            method.reply_text,
        )
        self._gone_reply_queues[queue] = 0
        if len(self._gone_reply_queues) > MAX_GONE_REPLY_QUEUES:
            self._gone_reply_queues.popitem(last=False)

    def _skip_orphaned(self, generation: int, tag: int, reply_to: str) -> None:
        """Ack, without running it, a request whose reply queue is known to be gone."""
        skipped = self._gone_reply_queues[reply_to] = self._gone_reply_queues[reply_to] + 1
        self._gone_reply_queues.move_to_end(reply_to)
        self.metrics.count("orphaned_requests")
        if skipped == 1:  # once per gone queue; the counter has the rest
            log.warning(
                "skipping request(s) for reply queue %r: their caller's connection is gone",
                reply_to,
            )
        self._ack(generation, tag)

    # -- requests ----------------------------------------------------------------------------

    def _on_request(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        # As _track, inlined: this runs for every request.
        assert self._worker is not None
        generation = self._worker.generation
        if generation != self._ack_generation:  # a new channel: its tags start again at 1
            self._ack_generation = generation
            self._running.clear()
            self._finished.clear()
        self._running.add(method.delivery_tag)
        if self._gone_reply_queues and properties.reply_to in self._gone_reply_queues:
            self._skip_orphaned(generation, method.delivery_tag, properties.reply_to)
            return
        service = self._queues.get(method.routing_key, "")
        self._pool.spawn(  # never waits: with every slot taken, the request is queued
            self._handle_request, service, generation, method.delivery_tag, properties, body
        )

    def _track(self, tag: int) -> int:
        """Note delivery ``tag`` (a request, a service-mode notification or a lease) as
        running until it is acked; return its channel's generation."""
        assert self._worker is not None
        generation = self._worker.generation
        if generation != self._ack_generation:  # a new channel: its tags start again at 1
            self._ack_generation = generation
            self._running.clear()
            self._finished.clear()
        self._running.add(tag)
        return generation

    def _ack(self, generation: int, tag: int) -> None:
        """Ack a request now (one that gets no reply)."""
        self._ack_later(generation, tag)
        self._flush_acks()

    def _ack_later(self, generation: int, tag: int) -> None:
        """Mark a request finished; the worker acks it once the current batch is published."""
        if generation == self._ack_generation:
            self._running.discard(tag)
            self._finished.append(tag)
        # else: the channel that delivered it is gone, and the broker redelivers it

    def _flush_acks(self) -> None:
        """Ack the finished requests, with one ``multiple=True`` ack where that is safe.

        Every delivered tag is running, finished (here) or acked. ``multiple=True`` on tag T
        acks every unacked tag up to T, so it may cover the finished tags below the oldest
        running one; a tag that finished ahead of an older running request is acked alone,
        at once (holding its ack back would hold a prefetch slot while a slow call runs).
        """
        finished = self._finished
        if not finished:
            return
        worker = self._worker
        channel = worker.channel if worker is not None else None
        if worker is None or channel is None or worker.generation != self._ack_generation:
            finished.clear()  # the channel that delivered them is gone: the broker redelivers
            return
        oldest_running = min(self._running) if self._running else None
        if oldest_running is None:
            channel.basic_ack(max(finished), multiple=True)
        else:
            below = [tag for tag in finished if tag < oldest_running]
            if below:
                channel.basic_ack(max(below), multiple=True)
            for tag in finished:
                if tag > oldest_running:
                    channel.basic_ack(tag)
        finished.clear()

    def _handle_request(
        self,
        service: str,
        generation: int,
        tag: int,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        assert self._worker is not None
        reply_to = properties.reply_to
        cid = properties.correlation_id or ""
        envelope = received_envelope(properties, body)
        reply: Reply | None = None
        codec: AbstractCodec | None = None
        limit = self.max_message_size
        try:
            codec = self.codecs.get(envelope.content_type)
            if isinstance(properties, UndecodableProperties):  # hostile or broken headers
                raise DecodeError(
                    f"the request's AMQP headers could not be decoded: {properties.isc_error}; "
                    "send header values of the kinds isc sends (strings, integers, booleans)"
                )
            if reply_to is not None and not isinstance(reply_to, str):
                raise DecodeError(f"the request's reply_to {reply_to!r} is not UTF-8")
            if limit is not None and len(body) > limit:
                raise MessageTooLargeError(
                    f"the request is {len(body)} bytes, over this node's max_message_size of "
                    f"{limit} bytes; send less data per call"
                )
            request = Request.decode(envelope, codec)
        except CodecNotAllowedError as exc:
            log.warning("refused pickle for %s (correlation id %r): %s", service, cid, exc)
            codec = PickleCodec()  # encoding pickle is safe: the caller can read the refusal
            reply = Reply.from_exception(cid, exc)
            self.metrics.count("bad_requests")
        except IscError as exc:
            log.error(
                "bad request for %s (correlation id %r): %s; %s",
                service,
                cid,
                exc,
                describe_payload(body),
            )
            reply = Reply.from_exception(cid, exc)
            codec = codec or JSONCodec()
            self.metrics.count("bad_requests")
        else:
            if request.deadline is not None and request.deadline < time.time():
                log.warning(
                    "skipping %s.%s (correlation id %r): its caller gave up %.1fs ago",
                    service,
                    request.method,
                    cid,
                    time.time() - request.deadline,
                )
                self.metrics.count("expired_requests")
                self._worker.call_soon(lambda: self._ack(generation, tag))
                return
            reply = self._execute(service, request)
        if not reply_to or not isinstance(reply_to, str):  # a failure was logged: nobody to tell
            self.metrics.count("requests_without_reply_to")
            self._worker.call_soon(lambda: self._ack(generation, tag))
            return
        try:
            out = reply.encode(codec)
            if limit is not None and len(out.body) > limit:
                raise MessageTooLargeError(
                    f"the reply is {len(out.body)} bytes, over this node's max_message_size "
                    f"of {limit} bytes; return less data per call"
                )
        except IscError as exc:
            log.error("cannot send the reply of %s (correlation id %r): %s", service, cid, exc)
            self.metrics.count("unsendable_replies")
            out = Reply.from_exception(cid, exc).encode(codec)
        # Alone, the reply goes out at once from this greenlet; with other requests running,
        # the loop gathers the replies that finish together into one write and one ack.
        self._worker.submit(
            Outgoing(
                out,
                self.exchange,
                reply_to,
                mandatory=True,  # a reply to a gone queue comes back: see _on_return
                on_published=lambda: self._ack_later(generation, tag),
            ),
            batch=len(self._running) > 1,
        )

    def _execute(self, service: str, request: Request) -> Reply:
        name = request.method
        args, kwargs = request.args, request.kwargs
        cid = request.correlation_id
        observed = self._observer.call(service, request)  # metrics, log context, trace span
        origin = f"{service}.{name}"  # the error chain's entry for an error of this call
        try:
            fn = self._services.method(service, name, args, kwargs)
        except MethodError as exc:
            log.info("refused %s: %s", origin, exc)
            observed.refused(exc, exc.known_method)
            return Reply.failure(cid, str(exc), exc.type_name, (origin,))
        try:
            self._run_hooks("pre_call", name, args, kwargs)
            result = fn(*args, **kwargs)
            self._run_hooks("post_success", name, args, kwargs, (None, result))
        except Exception as exc:
            # A RemoteException from a service this one called keeps its original type.
            reply = Reply.from_exception(cid, exc, origin)
            log.info(
                "%s raised %s: %s%s", origin, reply.error_type, exc, _chain_note(reply.error_chain)
            )
            try:
                self._run_hooks("post_error", name, args, kwargs, exc)
            except Exception:
                log.exception("post_error hook failed for %s", origin)
            observed.failed(exc)
            return reply
        observed.succeeded()
        return Reply.success(cid, result)

    def _run_hooks(self, name: str, *args: Any) -> None:
        for hook in self.hooks[name]:
            hook(*args)

    # -- notifications -----------------------------------------------------------------------

    def _decode_notification(
        self, properties: pika.spec.BasicProperties, envelope: Envelope
    ) -> Notification:
        """Decode a delivered notification; raises an :class:`IscError` saying why it cannot
        be (hostile headers, over ``max_message_size``, an unknown or refused codec, ...)."""
        if isinstance(properties, UndecodableProperties):  # hostile or broken headers
            raise DecodeError(f"its AMQP headers could not be decoded: {properties.isc_error}")
        limit = self.max_message_size
        if limit is not None and len(envelope.body) > limit:
            raise MessageTooLargeError(
                f"{len(envelope.body)} bytes, over this node's max_message_size of {limit} bytes"
            )
        return Notification.decode(envelope, self.codecs.get(envelope.content_type))

    def _on_broadcast(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        envelope = received_envelope(properties, body)
        try:
            notification = self._decode_notification(properties, envelope)
        except IscError as exc:
            log.error("bad notification dropped: %s; %s", exc, describe_payload(body))
            self.metrics.count("bad_notifications")
            return
        listeners = self._listeners.get(notification.event)
        if not listeners:
            return
        pool = self._listener_pool
        room = pool.room()
        if room is not None and room < len(listeners):
            self._drop_notification(notification.event)
            return
        for listener in listeners:  # never waits: room() said the pool takes them all
            pool.spawn(self._run_listener, listener, notification)

    def _drop_notification(self, event: str) -> None:
        """Count a notification dropped for want of listener capacity; log rate-limited.

        The first drop is logged at once; later ones are summed up in one line every
        :data:`DROP_LOG_INTERVAL` seconds while they go on.
        """
        self.metrics.count("dropped_notifications")
        if self._drop_log_timer is not None:
            self._drops_unlogged += 1
            return
        log.warning(
            "dropping notification %r: %d listener(s) run and %d wait, the most this node "
            "takes (raise listener_pool_size or max_queued_notifications, or make listeners "
            "faster); further drops are summed up every %.0fs",
            event,
            self._listener_pool.running,
            self._listener_pool.queued,
            DROP_LOG_INTERVAL,
        )
        self._drop_log_timer = gevent.spawn_later(
            DROP_LOG_INTERVAL, self._log_dropped_notifications
        )

    def _log_dropped_notifications(self) -> None:
        """Log the drops since the last line; keep summing while drops go on."""
        self._drop_log_timer = None
        if not self._drops_unlogged:
            return
        log.warning(
            "dropped %d more notification(s) since the last line: the listeners' backlog was full",
            self._drops_unlogged,
        )
        self._drops_unlogged = 0
        if not self._stopping:
            self._drop_log_timer = gevent.spawn_later(
                DROP_LOG_INTERVAL, self._log_dropped_notifications
            )

    def _run_listener(self, listener: Callable[..., Any], notification: Notification) -> None:
        observed = self._observer.listener(listener, notification)
        try:
            listener(*notification.args, **notification.kwargs)
        except Exception as exc:
            log.exception(
                "listener %s for event %r failed", _qualname(listener), notification.event
            )
            observed.failed(exc)
            return
        observed.succeeded()

    # -- service-mode notifications (I/O loop, then the listener pool) ------------------------

    def _queue_arguments(self, **extra: Any) -> dict[str, Any]:
        """Arguments of the durable queues of service-mode listeners and cluster timers:
        quorum when the node's ``queue_type`` is, else durable classic (whatever
        ``queue_type`` says: these queues exist to outlive nodes and restarts)."""
        arguments = dict(extra)
        if self.declared_queue_type == "quorum":
            arguments["x-queue-type"] = "quorum"
        return arguments

    def _declare_service_listeners(self, channel: AmqpChannel, fanout: str) -> None:
        """Each service-mode listener consumes its durable queue, bound to the fanout exchange
        as broadcast queues are (so every 1.x or 2.x sender reaches it); a notification
        rejected there is dead-lettered by the broker to the listener's dead-letter queue."""
        for consumer in self._service_consumers:
            self._consume_service_listener(channel, consumer, fanout)

    def _consume_service_listener(
        self, channel: AmqpChannel, consumer: _ServiceConsumer, fanout: str
    ) -> None:
        """Declare one service-mode listener's queue and dead-letter queue, bind and consume."""
        channel.queue_declare(
            consumer.dead_letter_queue,
            durable=True,
            arguments=self._queue_arguments() or None,
        )
        channel.queue_declare(
            consumer.queue,
            durable=True,
            arguments=self._queue_arguments(
                **{
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": consumer.dead_letter_queue,
                }
            ),
        )
        channel.queue_bind(consumer.queue, fanout)
        # Each consumer holds at most this many unacked notifications: the bound of the work
        # service-mode listeners queue in the listener pool (they are never dropped).
        channel.basic_qos(prefetch_count=self._service_prefetch())
        on_message = partial(self._on_service_notification, consumer)
        tag = channel.basic_consume(consumer.queue, on_message)
        again = partial(self._consume_service_listener, consumer=consumer, fanout=fanout)
        self._consumers[tag] = (consumer.queue, f"service-mode {consumer.what}", again)

    def _service_prefetch(self) -> int:
        """How many unacked notifications each service-mode listener's consumer may hold:
        :data:`SERVICE_PREFETCH_PER_SLOT` per listener slot, and no more than the slots plus
        ``max_queued_notifications`` (so that ``max_queued_notifications=0`` lets none wait)."""
        pool = self._listener_pool
        return min(pool.size * SERVICE_PREFETCH_PER_SLOT, pool.size + (pool.max_queued or 0))

    def _on_service_notification(
        self,
        consumer: _ServiceConsumer,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        generation = self._track(method.delivery_tag)
        tag = method.delivery_tag
        envelope = received_envelope(properties, body)
        try:
            notification = self._decode_notification(properties, envelope)
        except IscError as exc:
            log.error(
                "bad notification dead-lettered to %r: %s; %s",
                consumer.dead_letter_queue,
                exc,
                describe_payload(body),
            )
            self.metrics.count("bad_notifications")
            self._reject(generation, tag)
            return
        if notification.event != consumer.listener.event:
            # The queue is bound to the fanout exchange: it gets every event; keep its own.
            self._ack(generation, tag)
            return
        self._listener_pool.spawn_unbounded(
            self._run_service_listener, consumer, notification, generation, tag, envelope
        )

    def _run_service_listener(
        self,
        consumer: _ServiceConsumer,
        notification: Notification,
        generation: int,
        tag: int,
        envelope: Envelope,
    ) -> None:
        worker = self._worker
        assert worker is not None
        if worker.generation != generation:
            return  # its channel is gone: the broker delivers it again (maybe to another node)
        listener = consumer.listener
        observed = self._observer.listener(listener.fn, notification)
        try:
            listener.fn(*notification.args, **notification.kwargs)
        except Exception as exc:
            observed.failed(exc)
            self._retry_or_dead_letter(consumer, notification, generation, tag, envelope)
            return
        observed.succeeded()
        worker.call_soon(lambda: self._ack(generation, tag))

    def _retry_or_dead_letter(
        self,
        consumer: _ServiceConsumer,
        notification: Notification,
        generation: int,
        tag: int,
        envelope: Envelope,
    ) -> None:
        """A service-mode listener raised: publish the notification again at the end of its
        queue with one more retry counted (then ack this delivery), or, with its retries
        spent, reject it so that the broker dead-letters it."""
        worker = self._worker
        assert worker is not None
        listener = consumer.listener
        headers = dict(envelope.headers or {})
        failures = headers.get(RETRIES_HEADER, 0)
        failures = (failures if isinstance(failures, int) else 0) + 1
        where = f"listener {listener.service}.{listener.method} for event {notification.event!r}"
        if failures > listener.retries:
            log.exception(
                "%s failed %d time(s): notification %r dead-lettered to queue %r",
                where,
                failures,
                notification.correlation_id,
                consumer.dead_letter_queue,
            )
            self.metrics.count("dead_lettered_notifications")
            worker.call_soon(lambda: self._reject(generation, tag))
            return
        log.exception(
            "%s failed (attempt %d of %d); retrying notification %r",
            where,
            failures,
            listener.retries + 1,
            notification.correlation_id,
        )
        self.metrics.count("retried_notifications")
        headers[RETRIES_HEADER] = failures
        again = Envelope(
            envelope.body,
            envelope.content_type,
            envelope.content_encoding,
            envelope.correlation_id,
            None,
            headers,
        )
        # Published before the ack, on the same channel: a node that dies in between leaves
        # both copies (at-least-once), never neither.
        acked = lambda: self._ack_later(generation, tag)  # noqa: E731
        worker.submit(Outgoing(again, "", consumer.queue, on_published=acked, persistent=True))

    def _reject(self, generation: int, tag: int) -> None:
        """Reject a delivery without requeueing it (on the loop): its queue dead-letters it."""
        worker = self._worker
        channel = worker.channel if worker is not None else None
        if worker is None or channel is None or generation != self._ack_generation:
            return  # the channel that delivered it is gone: the broker redelivers it
        self._running.discard(tag)
        channel.basic_reject(tag, requeue=False)
        self._flush_acks()

    # -- cluster timers (I/O loop, then a greenlet per held lease) -----------------------------

    def _declare_cluster_timers(self, channel: AmqpChannel) -> None:
        """Each cluster timer consumes its single-active-consumer queue, which holds one token:
        the lease. The broker delivers it to the active consumer only; the node that holds it
        (unacked) ticks, and when its channel goes the broker hands the token to the next."""
        for timer in self._cluster_timers:
            self._consume_cluster_timer(channel, timer)

    def _consume_cluster_timer(self, channel: AmqpChannel, timer: _ClusterTimer) -> None:
        """Declare one cluster timer's lease queue (adding the token if none is ready) and
        consume it."""
        timer.lease = None
        channel.queue_declare(
            timer.queue,
            durable=True,
            arguments=self._queue_arguments(**{"x-single-active-consumer": True}),
            callback=partial(self._on_timer_queue, timer),
        )
        channel.basic_qos(prefetch_count=2)  # the lease, and a duplicate token to delete
        tag = channel.basic_consume(timer.queue, partial(self._on_lease, timer))
        again = partial(self._consume_cluster_timer, timer=timer)
        self._consumers[tag] = (timer.queue, f"cluster timer {timer.name}", again)

    def _on_timer_queue(self, timer: _ClusterTimer, frame: Any) -> None:
        """A timer's queue holds no ready token: add one (any extra one is deleted by the
        node that holds the lease, so two nodes adding one at once is harmless)."""
        if frame.method.message_count == 0 and self._worker is not None:
            token = Envelope(b"", LEASE_CONTENT_TYPE)
            self._worker.submit(Outgoing(token, "", timer.queue))

    def _on_lease(
        self,
        timer: _ClusterTimer,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        generation = self._track(method.delivery_tag)
        if timer.lease is not None and timer.lease[0] == generation:
            self._ack(generation, method.delivery_tag)  # a second token: delete it
            return
        timer.lease = (generation, method.delivery_tag)
        if self._stopping:
            return  # the lease goes back when the channel closes
        log.info("cluster timer %s: this node holds the lease and ticks", timer.name)
        if timer.loop is not None:
            timer.loop.kill(block=False)
        timer.loop = gevent.spawn(self._cluster_timer_loop, timer, generation)

    def _cluster_timer_loop(self, timer: _ClusterTimer, generation: int) -> None:
        """Tick every period while this node holds the lease of channel ``generation``.

        The first tick comes one period after taking the lease: the node that held it before
        may have ticked just before it went, and a tick per interval is the promise."""
        period = timer.period
        next_tick = time.monotonic() + period
        while True:
            gevent.sleep(max(0.0, next_tick - time.monotonic()))
            worker = self._worker
            lease = timer.lease
            if (
                self._stopping
                or worker is None
                or lease is None
                or lease[0] != generation
                or worker.generation != generation
            ):
                return
            next_tick += period
            self._tick(timer.name, timer.fn)
            if next_tick < time.monotonic():
                next_tick = time.monotonic() + period

    # -- timers ------------------------------------------------------------------------------

    def _start_timers(self) -> None:
        for period, name, fn in self._services.timers():
            self._timers.append(gevent.spawn(self._timer_loop, period, name, fn))

    def _timer_loop(self, period: float, name: str, fn: Callable[[], Any]) -> None:
        next_tick = time.monotonic() + period
        while True:
            gevent.sleep(max(0.0, next_tick - time.monotonic()))
            if self._stopping:
                return
            next_tick += period
            self._tick(name, fn)
            if next_tick < time.monotonic():  # a slow tick: skip missed ticks, keep the rate
                next_tick = time.monotonic() + period

    def _tick(self, name: str, fn: Callable[[], Any]) -> Exception | None:
        """Run timer ``name`` ("service.method") once, with the hooks; return (and log) its
        failure, so the timer keeps ticking."""
        service, method = name.split(".", 1)
        observed = self._observer.tick(service, method)
        try:
            self._run_hooks("pre_call", method, (), {})
            result = fn()
            self._run_hooks("post_success", method, (), {}, (None, result))
        except Exception as exc:
            log.exception("timer %s failed; it keeps ticking", name)
            try:
                self._run_hooks("post_error", method, (), {}, exc)
            except Exception:
                log.exception("post_error hook failed for timer %s", name)
            observed.failed(exc)
            return exc
        observed.succeeded()
        return None


def _log_to_stderr_if_unconfigured() -> Callable[[], None] | None:
    """When no handler would show isc's log lines, add one on the ``isc`` logger that writes
    INFO and above to stderr (:data:`LOG_FORMAT`); return what undoes it, else None.

    Any handler counts as configured: ``logging.basicConfig()``, or a ``NullHandler`` on the
    ``isc`` logger for a program that wants the node silent.
    """
    isc_logger = logging.getLogger("isc")
    if isc_logger.hasHandlers():
        return None
    handler = logging.StreamHandler()  # sys.stderr
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(LogContextFilter())
    isc_logger.addHandler(handler)
    level = isc_logger.level
    if level == logging.NOTSET:  # else set_logging_level() chose it: keep that
        isc_logger.setLevel(logging.INFO)

    def undo() -> None:
        isc_logger.removeHandler(handler)
        isc_logger.setLevel(level)

    return undo


def _chain_note(chain: tuple[str, ...]) -> str:
    """`` (via inventory.reserve)`` for an error that came from other calls, else ``""``."""
    return f" (via {' <- '.join(reversed(chain[:-1]))})" if len(chain) > 1 else ""


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
