"""The client's AMQP worker: one I/O thread owns the pika connection, and lends it.

pika connections and channels are not thread-safe: only one thread may use them at a time.
The worker's ``IOLoop`` (which outlives reconnections) runs on its own thread. With the fast
path (:mod:`isc.client._fastpath`, on Linux, outside gevent) it is a shared loop, whose lock
the I/O thread holds except while it waits for I/O; whoever holds that lock may use the
connection, as if on the loop:

- :meth:`AmqpWorker.submit` publishes on the caller's thread when the loop is waiting (no
  wake-up of the I/O thread); when the loop is busy, the item joins a deque and one
  ``add_callback_threadsafe`` has the loop publish everything gathered in one write.
- :meth:`AmqpWorker.wait_for` lets a caller blocked in a call run the loop itself until its
  reply arrives, so a call costs no hand-over between threads at all. One caller at a time
  drives the loop, and only until its own call ends; the others wait on their own futures,
  which the driver finishes as it reads their replies. Nobody holds the lock while waiting
  for I/O, and no user code runs under it (done-callbacks run on the client's callback
  thread), so no caller ever waits for another caller's call.

On stock pika (:class:`isc.client._wire.Wire`) every publish is handed to the I/O thread and
callers wait on their futures. This module uses pika's public API only; the wire does the
rest.

Given several broker URLs (the members of a RabbitMQ cluster), a worker starts with one of
them (round-robin from a random offset per process: workers spread over the members) and,
when a connection attempt fails or a ready connection drops, moves on to the next one,
with the usual backoff (doubling after each full round of the URLs).

Items submitted with ``confirm=True`` (notifications) go out on a second channel in
publisher-confirm mode and count against a bounded buffer (:mod:`isc.client._confirms`)
until the broker confirms them. Calls use a channel without confirms: the broker would
otherwise ack every request.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.channel
import pika.exceptions
import pika.spec

from isc.core import (
    AccessRefusedError,
    ClientClosedError,
    ConnectionLostError,
    Envelope,
    WrongThreadError,
    check_broker_urls,
    redact_url,
)

from . import _process
from ._confirms import ConfirmBuffer
from ._future import FutureResult
from ._transport import ReturnHandler, SetupHandler
from ._wire import Wire, select_wire

__all__ = ["AmqpWorker", "Outgoing", "access_refused", "received_envelope", "PIKA_QUIETED_LOGGERS"]

log = logging.getLogger("isc.client")

#: pika's loggers that report every failed connection attempt at ERROR level (several lines
#: each), and the broker's close of a connection being set up; isc reports each attempt
#: itself, in one line. :class:`AmqpWorker` drops their records below CRITICAL (see
#: :func:`_quiet_pika`); set ``ISC_PIKA_CONNECT_LOGS=1`` to keep them.
PIKA_QUIETED_LOGGERS = (
    "pika.adapters.utils.connection_workflow",
    "pika.adapters.utils.io_services_utils",
    "pika.adapters.base_connection",
    "pika.connection",
)

#: Which of several broker URLs the next worker of this process starts with (modulo their
#: number): a random offset per process, then round-robin, so workers spread over members.
_FIRST_URL = itertools.count(random.randrange(1 << 16))

#: AMQP reply codes of a refused login or vhost: retrying cannot help.
_REFUSED_CODES = (403, 530)


class _DropBelowCritical(logging.Filter):
    """Drops pika's records of failed connection attempts (isc logs one line per attempt)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL


_PIKA_FILTER = _DropBelowCritical()


def _quiet_pika() -> None:
    """Install :data:`_PIKA_FILTER` on :data:`PIKA_QUIETED_LOGGERS` (once; idempotent)."""
    if os.environ.get("ISC_PIKA_CONNECT_LOGS", "") == "1":
        return
    for name in PIKA_QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        if _PIKA_FILTER not in logger.filters:
            logger.addFilter(_PIKA_FILTER)


class Outgoing:
    """A message waiting to be published (a request carries its reply handling).

    Its callbacks run where the connection is in use: on the I/O thread, or on the thread
    that submitted it while that thread holds the shared loop's lock.
    """

    __slots__ = (
        "confirm",
        "envelope",
        "exchange",
        "expiration_at",
        "key",
        "mandatory",
        "on_published",
        "on_sent",
        "on_taken",
        "persistent",
        "wants_reply",
    )

    def __init__(
        self,
        envelope: Envelope,
        exchange: str,
        key: str,
        *,
        mandatory: bool = False,
        wants_reply: bool = False,
        expiration_at: float | None = None,
        on_sent: Callable[[], bool] | None = None,
        on_taken: Callable[[], None] | None = None,
        on_published: Callable[[], None] | None = None,
        confirm: bool = False,
        persistent: bool = False,
    ) -> None:
        self.envelope = envelope
        #: published with ``delivery_mode=2``: a durable queue keeps it across a broker restart
        self.persistent = persistent
        self.exchange = exchange
        self.key = key
        self.mandatory = mandatory
        #: set ``reply_to`` to the worker's reply queue when publishing
        self.wants_reply = wants_reply
        #: monotonic time after which the message is useless (a call's deadline)
        self.expiration_at = expiration_at
        #: called just before publishing; returning False drops the message
        self.on_sent = on_sent
        #: called when the worker takes the item (e.g. to arm a timer)
        self.on_taken = on_taken
        #: called right after publishing (e.g. to ack the request)
        self.on_published = on_published
        #: keep it until the broker confirms it, and publish it again after a reconnect
        self.confirm = confirm


def received_envelope(properties: pika.spec.BasicProperties, body: bytes) -> Envelope:
    """The :class:`Envelope` of a message pika delivered."""
    return Envelope(
        body=body,
        content_type=properties.content_type or "",
        content_encoding=properties.content_encoding,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        headers=properties.headers or {},
    )


class AmqpWorker:
    """Owns the connection, the topology and the reply queue; reconnects with backoff.

    The real :class:`~isc.client._transport.Transport`: a pika connection to RabbitMQ.
    ``url`` may name several brokers (comma-separated, see
    :func:`~isc.core.check_broker_urls`): the worker connects to one and fails over to the
    next (see the module's docstring).
    """

    def __init__(
        self,
        url: str,
        exchange: str,
        *,
        connect_timeout: float,
        reconnect_timeout: float,
        setup: SetupHandler,
        on_return: ReturnHandler,
        on_disconnect: Callable[[BaseException], None],
        name: str = "isc-client",
        logger: logging.Logger | None = None,
        max_buffered: int = 10_000,
        confirms: bool = True,
        on_channel_error: Callable[[BaseException], bool | None] | None = None,
        gevent: bool = False,
        fastpath: bool | None = None,
        on_refused: Callable[[AccessRefusedError], None] | None = None,
    ) -> None:
        #: The broker URLs this worker connects to, one at a time.
        self.urls = check_broker_urls(url)
        self.exchange = exchange
        _quiet_pika()
        self._params = [pika.URLParameters(one) for one in self.urls]
        for params in self._params:
            params.socket_timeout = connect_timeout
            params.stack_timeout = max(connect_timeout, 1.0) * 2
            params.connection_attempts = 1
            params.client_properties = {"connection_name": f"{name} pid={os.getpid()}"}
        #: The index in :attr:`urls` of the broker connected to, or tried next.
        self.url_index = next(_FIRST_URL) % len(self.urls)
        self._reconnect_timeout = reconnect_timeout
        self._setup = setup
        self._on_return = on_return
        self._on_disconnect = on_disconnect
        self._name = name
        self._log = logger or log

        #: The process this worker belongs to (see :mod:`isc.client._process`): a forked
        #: child must not touch it, a process patched by gevent since needs another.
        self.fork_generation = _process.fork_generation()
        self.gevent_mode = _process.gevent_patched() or gevent
        #: How this worker drives pika: the fast path or stock pika (see select_wire()).
        self.wire: Wire = select_wire(fastpath)
        # The node asks for a loop on gevent's hub (isc.server); the client never imports
        # gevent. A client's own loop is shared where it can be: callers then publish on
        # their own thread instead of waking the I/O thread (see submit()).
        self._ioloop = self.wire.ioloop(gevent=gevent)
        self._shared: Any = self._ioloop if self.wire.shares_loop(self._ioloop) else None
        self._thread: threading.Thread | None = None
        self._inbox: collections.deque[Outgoing] = collections.deque()
        self._parked: collections.deque[Outgoing] = collections.deque()
        self._flush_scheduled = False
        self._confirms = confirms
        self._on_channel_error = on_channel_error
        self._on_refused = on_refused
        #: Set when the owner's ``on_channel_error`` explained why the broker closed the
        #: connection (it logged it): the reconnect is then logged at DEBUG only.
        self._close_explained = False
        #: Why the broker refused this connection for good (None unless it did).
        self.refused: AccessRefusedError | None = None
        #: Notifications until the broker confirms them (bounded by ``max_buffered``).
        self.confirm_buffer = ConfirmBuffer(",".join(self.urls), max_buffered)
        #: Counters: items published again after a reconnect, items the broker nacked,
        #: confirm=True items abandoned at shutdown.
        self.stats = self.confirm_buffer.stats
        self._connection: Any = None
        self._channel: Any = None
        #: A second channel, in publisher-confirm mode, for confirm=True items (with confirms).
        self._confirm_channel: Any = None
        self._stopping = False
        self._attempt = 0
        #: The reply queue of the current connection, set by the setup handler.
        self.reply_to: str | None = None
        #: Counts channels opened; lets deferred work (acks) detect a stale channel.
        self.generation = 0
        self.ready = threading.Event()
        #: When the connection last became ready (monotonic), and how many times it has.
        self.ready_since = 0.0
        self.connections = 0
        self.stopped = threading.Event()
        self.last_error: BaseException | None = None
        #: Called on the I/O thread after each batch of submitted items is published (the node
        #: acks a batch of requests there, after their replies).
        self.on_flushed: Callable[[], None] | None = None
        #: Called on the I/O thread each time the connection becomes ready.
        self.on_ready: Callable[[], None] | None = None
        #: A channel of its own for queue_counts()'s passive declarations (a 404 closes it,
        #: not the calls' channel), opened on first use; and the counts asked for, per queue.
        self._probe_channel: Any = None
        self._probes: dict[str, list[Callable[[tuple[int, int] | None], None]]] = {}

    @property
    def url(self) -> str:
        """The broker URL connected to, or tried next."""
        return self.urls[self.url_index]

    # -- lifecycle (any thread) -------------------------------------------------------------

    def start(self) -> None:
        """Start the I/O thread; it connects at once."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the I/O thread (waits up to ``timeout`` seconds)."""
        if self._thread is None or self.stopped.is_set():
            return
        self._ioloop.add_callback_threadsafe(self._shutdown)
        if timeout > 0 and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def abandon_after_fork(self) -> None:
        """In a forked child: close this process's copies of the worker's descriptors (the
        socket, the poller's) without a byte on the wire or a change to the epoll instances
        the parent still uses. The worker is unusable afterwards."""
        self._stopping = True
        self.ready.clear()
        self.wire.close_after_fork(self._ioloop, self._connection)
        self._inbox.clear()
        self._parked.clear()
        self.confirm_buffer.forget()
        self.stopped.set()

    def submit(self, item: Outgoing, *, batch: bool = False) -> None:
        """Publish ``item`` (thread-safe): at once from this thread when the loop is shared
        and waiting, else on the loop's next pass. ``batch=True`` (more items will follow
        soon) always leaves it to the loop, which publishes what has gathered in one write.

        Raises :class:`BufferFullError` when ``item.confirm`` is set and ``max_buffered``
        confirmed items are already waiting for the broker.
        """
        if self._stopping:
            if self.refused is not None:
                raise AccessRefusedError(str(self.refused))
            raise ClientClosedError("the client is stopped")
        if item.confirm:
            self.confirm_buffer.reserve()
        self._inbox.append(item)
        shared = self._shared
        if (
            shared is not None
            and not batch
            and not shared.in_loop()
            and shared.lock.acquire(blocking=False)
        ):
            # The loop is waiting for I/O: publish from this thread, without waking it.
            try:
                if self._inbox:
                    self._flush()
            finally:
                shared.lock.release()
            return
        # The loop is busy (it flushes the whole inbox on its next pass), or not shared.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._ioloop.add_callback_threadsafe(self._flush)

    @property
    def buffered(self) -> int:
        """How many ``confirm=True`` items the broker has not confirmed yet."""
        return self.confirm_buffer.count

    def wait_confirmed(self, timeout: float | None = None) -> bool:
        """Wait until the broker confirmed every ``confirm=True`` item; return whether it did."""
        return self.confirm_buffer.wait_empty(timeout)

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` as if on the I/O thread (thread-safe): at once when called on the
        loop, or when the loop is shared and waiting; else on the loop soon."""
        shared = self._shared
        if shared is not None and shared.in_loop():
            callback()
            return
        if shared is not None and shared.lock.acquire(blocking=False):
            try:
                callback()
            finally:
                shared.lock.release()
            return
        self._ioloop.add_callback_threadsafe(callback)

    def wait_for(self, future: FutureResult, deadline: float) -> bool:
        """Wait until ``future`` is done or the monotonic ``deadline`` passes; return whether
        it is done.

        Where the loop is shared and nobody drives it, this thread drives it (reads and
        dispatches what arrives, for every caller) until its own future is done: a caller
        alone reads its own reply, with no hand-over between threads. Otherwise it waits on
        the future, which whoever reads the reply finishes. Either way it never waits for
        another caller's call, and never past ``deadline``.

        Raises :class:`WrongThreadError` on the loop's own thread, which would wait for a
        reply only it can read.
        """
        shared = self._shared
        if shared is not None:
            if shared.is_loop_thread():
                raise WrongThreadError(
                    f"a blocking call to {future.cannonical_name} was made on the isc client's "
                    "I/O thread, which reads the replies: use call_async() there"
                )
            remaining = deadline - time.monotonic()
            if remaining > 0 and not shared.driven and shared.lock.acquire(timeout=remaining):
                try:
                    shared.drive(future.done, deadline - time.monotonic())
                finally:
                    shared.lock.release()
        if future.done():
            return True
        return future._wait_done(max(0.0, deadline - time.monotonic()))

    def wake_driver(self) -> None:
        """Wake a caller that drives the loop (it may be waiting for a call just failed)."""
        shared = self._shared
        if shared is not None and shared.driven:
            shared.wake_threadsafe()

    def call_later(self, delay: float, callback: Callable[[], None]) -> object:
        """Schedule ``callback`` on the I/O thread; only call this on the I/O thread (or
        holding the shared loop's lock, as :meth:`submit`'s callbacks do)."""
        handle = self._ioloop.call_later(delay, callback)
        shared = self._shared
        if shared is not None and not shared.in_loop():
            shared.wake_if_later_than(time.monotonic() + delay)
        return handle

    def cancel_timer(self, handle: object) -> None:
        """Cancel a timer from :meth:`call_later`; only call this from the I/O thread."""
        self._ioloop.remove_timeout(handle)

    def queue_counts(self, queue: str, callback: Callable[[tuple[int, int] | None], None]) -> None:
        """Ask the broker how many consumers and ready messages ``queue`` has;
        ``callback((consumers, messages))`` runs on the loop with the answer, or with None
        when the queue does not exist or the connection is down. Call on the loop only. A
        passive declaration on a side channel: never on the steady-state path (the client
        asks only about a call unanswered for a while)."""
        waiting = self._probes.get(queue)
        if waiting is not None:  # already asked: one answer serves every caller
            waiting.append(callback)
            return
        connection = self._connection
        if not self.ready.is_set() or connection is None or not connection.is_open:
            callback(None)
            return
        self._probes[queue] = [callback]
        channel = self._probe_channel
        if channel is not None and channel.is_open:
            self._declare_probe(channel, queue)
        elif channel is None:
            self._probe_channel = connection.channel(on_open_callback=self._on_probe_channel_open)
        # else: it is opening; _on_probe_channel_open asks for every queue waiting

    def _on_probe_channel_open(self, channel: pika.channel.Channel) -> None:
        channel.add_on_close_callback(self._on_probe_channel_closed)
        for queue in list(self._probes):
            self._declare_probe(channel, queue)

    def _declare_probe(self, channel: pika.channel.Channel, queue: str) -> None:
        def answered(frame: Any) -> None:
            method = frame.method
            self._answer_probes(queue, (int(method.consumer_count), int(method.message_count)))

        channel.queue_declare(queue, passive=True, callback=answered)

    def _answer_probes(self, queue: str, count: tuple[int, int] | None) -> None:
        for callback in self._probes.pop(queue, ()):
            try:
                callback(count)
            except Exception:  # pragma: no cover - a bug in the caller
                self._log.exception("queue counts callback failed")

    def _on_probe_channel_closed(self, channel: Any, reason: BaseException) -> None:
        """A queue asked about does not exist (404 closes the side channel), or the
        connection went: whoever waits gets None; the next question opens a new channel."""
        if self._probe_channel is channel:
            self._probe_channel = None
        for queue in list(self._probes):
            self._answer_probes(queue, None)

    # -- the I/O thread ----------------------------------------------------------------------

    def _run(self) -> None:
        native = None if self.gevent_mode else _process.native_thread_ident()
        try:
            self._connect()
            self._ioloop.start()
        except Exception:  # pragma: no cover - a bug in the worker itself
            self._log.exception("isc I/O thread crashed")
        finally:
            self.ready.clear()
            self.stopped.set()
            try:
                self._ioloop.close()
            except Exception:  # pragma: no cover
                self._log.debug("closing the I/O loop failed", exc_info=True)
            if native is not None and _process.gevent_patched():
                _process.before_native_thread_exit(native)  # patched while it ran

    def _connect(self) -> None:
        if self._stopping:
            return
        self._log.debug("connecting to %s", redact_url(self.url))
        self._connection = self.wire.connect(
            self._params[self.url_index],
            self._ioloop,
            on_open=self._on_connection_open,
            on_open_error=self._on_connection_error,
            on_close=self._on_connection_closed,
        )

    def _schedule_reconnect(self, what: str, level: int = logging.WARNING) -> None:
        """Reconnect after a backoff (doubling from 0.1 s up to ``reconnect_timeout``), and
        log ``what`` happened and when the next attempt is: one line per attempt.

        With several URLs the attempt goes to the next one, and the backoff doubles only
        after each full round of them."""
        if self._stopping:
            self._ioloop.stop()
            return
        if self._reconnect_timeout <= 0:
            self._log.error(
                "%s; not reconnecting to %s (reconnect_timeout=0)", what, redact_url(self.url)
            )
            return
        count = len(self.urls)
        self.url_index = (self.url_index + 1) % count
        url = redact_url(self.url)
        delay = min(self._reconnect_timeout, 0.1 * (2 ** (self._attempt // count)))
        self._attempt += 1
        self._log.log(level, "%s; reconnecting to %s in %.1fs", what, url, delay)
        self._ioloop.call_later(delay, self._connect)

    def _on_connection_error(self, connection: Any, error: BaseException) -> None:
        error = root_cause(error)
        self.last_error = error
        self._connection = None
        refused = access_refused(error, self.url)
        if refused is not None:
            self._give_up(refused)
            return
        self._schedule_reconnect(f"cannot connect to {redact_url(self.url)}: {_describe(error)}")

    def _give_up(self, refused: AccessRefusedError) -> None:
        """The broker refused the credentials: stop for good, fail what waits, say why once."""
        self._log.error("%s", refused)
        self.refused = refused
        self.last_error = refused
        self._stopping = True
        self.ready.clear()
        self.confirm_buffer.abandon([*self._inbox, *self._parked])
        self._inbox.clear()
        self._parked.clear()
        if self._on_refused is not None:
            self._on_refused(refused)
        self._ioloop.stop()

    def _on_connection_closed(self, connection: Any, reason: BaseException) -> None:
        was_ready = self.ready.is_set()
        self.ready.clear()
        self._channel = None
        self._confirm_channel = None
        self._connection = None
        self._probe_channel = None
        for queue in list(self._probes):
            self._answer_probes(queue, None)
        self._requeue_unconfirmed()
        if self._stopping:
            self._ioloop.stop()
            return
        self.last_error = reason
        explained, self._close_explained = self._close_explained, False
        if was_ready:
            self._on_disconnect(ConnectionLostError(f"connection lost: {_describe(reason)}"))
        self._schedule_reconnect(
            f"connection to {redact_url(self.url)} lost: {_describe(reason)}",
            logging.DEBUG if explained else logging.WARNING,
        )

    def _on_connection_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._handle_return)
        self.generation += 1
        self._setup(channel, self._open_confirm_channel if self._confirms else self._on_ready)

    def _open_confirm_channel(self) -> None:
        # Notifications go out on a channel of their own in publisher-confirm mode: on the
        # calls' channel the broker would ack every request too, an extra frame to read and
        # an extra wake-up per call.
        assert self._connection is not None
        self._connection.channel(on_open_callback=self._on_confirm_channel_open)

    def _on_confirm_channel_open(self, channel: pika.channel.Channel) -> None:
        self._confirm_channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        self._requeue_unconfirmed()
        self.confirm_buffer.restart_sequence()  # tags count the messages after Confirm.Select
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._on_ready())

    @property
    def channel(self) -> pika.channel.Channel | None:
        """The open channel (I/O thread only), or None while disconnected."""
        return self._channel

    def _on_ready(self) -> None:
        self._attempt = 0
        self.ready_since = time.monotonic()
        self.connections += 1
        self.last_error = None
        self._log.info("connected to %s", redact_url(self.url))
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready()
        while self._parked:
            self._publish(self._parked.popleft())
        self._flush()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if self._stopping or self._connection is None:
            return
        by_broker = isinstance(reason, pika.exceptions.ChannelClosedByBroker)
        if by_broker:  # else the connection is closing: _on_connection_closed says so
            self._log.warning("channel closed by the broker: %s; reconnecting", _describe(reason))
        if self._on_channel_error is not None and self._on_channel_error(reason):
            self._close_explained = not by_broker
        if self._connection.is_open:
            self._connection.close()

    def _requeue_unconfirmed(self) -> None:
        """Put the items the lost channel never confirmed back in front of the parked ones."""
        items = self.confirm_buffer.take_unconfirmed()
        if items:
            self._log.info("%d unconfirmed message(s) will be published again", len(items))
            self._parked.extendleft(reversed(items))

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nacked = self.confirm_buffer.confirmed(
            method.delivery_tag,
            bool(method.multiple),
            nack=isinstance(method, pika.spec.Basic.Nack),
        )
        if nacked:
            # The broker could not take them (an internal error): try again.
            self._log.warning("the broker refused %d message(s); publishing again", len(nacked))
            for item in nacked:
                self._publish(item)

    def _handle_return(
        self,
        channel: Any,
        method: pika.spec.Basic.Return,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        self._on_return(method, properties)

    def _flush(self) -> None:
        self._flush_scheduled = False
        connection = self._connection
        if connection is not None:
            self.wire.start_batch(connection)  # one send() for the whole batch
        try:
            inbox = self._inbox
            while inbox:
                item = inbox.popleft()
                if item.on_taken is not None:
                    item.on_taken()
                if self.ready.is_set():
                    self._publish(item)
                else:
                    self._parked.append(item)
            self._drop_expired_parked()
            if self.on_flushed is not None:
                self.on_flushed()
        finally:
            if connection is not None:
                self.wire.end_batch(connection)

    def _drop_expired_parked(self) -> None:
        if not self._parked:
            return
        now = time.monotonic()
        kept = collections.deque(
            i for i in self._parked if i.expiration_at is None or i.expiration_at > now
        )
        self._parked = kept

    def _publish(self, item: Outgoing) -> None:
        if item.on_sent is not None and not item.on_sent():
            return  # the caller gave up already
        envelope = item.envelope
        expiration = None
        if item.expiration_at is not None:
            remaining = item.expiration_at - time.monotonic()
            if remaining <= 0:
                return
            expiration = str(max(1, int(remaining * 1000)))
        confirmed = item.confirm and self._confirms
        channel = self._confirm_channel if confirmed else self._channel
        assert channel is not None
        try:
            self.wire.publish(
                channel,
                item.exchange,
                item.key,
                envelope,
                reply_to=self.reply_to if item.wants_reply else None,
                expiration=expiration,
                mandatory=item.mandatory,
                persistent=item.persistent,
            )
        except pika.exceptions.AMQPError as exc:
            self._log.warning("publish failed (%s); will retry after reconnecting", _describe(exc))
            self._parked.appendleft(item)
            return
        if confirmed:
            self.confirm_buffer.published(item)
        elif item.confirm:
            self.confirm_buffer.release(1)  # nothing to wait for without confirms
        if item.on_published is not None:
            item.on_published()

    def _shutdown(self) -> None:
        self._stopping = True
        self.ready.clear()
        abandoned = self.confirm_buffer.abandon([*self._inbox, *self._parked])
        if abandoned:
            self._log.warning(
                "stopping with %d notification(s) the broker has not confirmed; "
                "they may not have been delivered",
                abandoned,
            )
        self._inbox.clear()
        self._parked.clear()
        connection = self._connection
        if connection is not None and not (connection.is_closed or connection.is_closing):
            connection.close()
            return  # _on_connection_closed stops the loop
        if connection is not None and connection.is_closing:
            return
        self._ioloop.stop()


def access_refused(error: BaseException, url: str) -> AccessRefusedError | None:
    """The :class:`AccessRefusedError` for ``error`` (a connection attempt's root cause) when
    the broker refused the login or the vhost, else None (an error worth retrying)."""
    refused_types = (
        pika.exceptions.AuthenticationError,
        pika.exceptions.ProbableAuthenticationError,
        pika.exceptions.ProbableAccessDeniedError,
    )
    code = getattr(error, "reply_code", None)
    if not isinstance(error, refused_types) and not (
        isinstance(error, pika.exceptions.ConnectionClosed) and code in _REFUSED_CODES
    ):
        return None
    return AccessRefusedError(
        f"the broker at {redact_url(url)} refused the connection ({_describe(error)}): "
        "check the credentials (the user name and password in the URL, --url / ISC_URL) "
        "and the user's access to the vhost; not retrying"
    )


def root_cause(error: BaseException) -> BaseException:
    """The error behind pika's connection-workflow wrappers (e.g. a TLS verification failure).

    pika reports a failed connection attempt as ``AMQPConnectionWorkflowFailed``, whose text
    is empty; the useful error sits in its ``exceptions``, wrapped once more in a phase error.
    """
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        exceptions = getattr(error, "exceptions", None)
        inner = exceptions[-1] if isinstance(exceptions, tuple) and exceptions else None
        if inner is None:
            inner = getattr(error, "exception", None)
        if not isinstance(inner, BaseException):
            break
        error = inner
    return error


def _describe(error: BaseException) -> str:
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}"
