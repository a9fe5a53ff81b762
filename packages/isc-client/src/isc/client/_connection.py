"""The client's AMQP worker: one I/O thread owns the pika connection, and lends it.

pika connections and channels are not thread-safe: only one thread may use them at a time.
The worker's ``IOLoop`` (which outlives reconnections) runs on its own thread, but on Linux it
is a :class:`~isc.client._threadloop.SharedIOLoop`, whose lock the I/O thread holds except
while it waits for I/O. Whoever holds that lock may use the connection, as if on the loop:

- :meth:`AmqpWorker.submit` publishes on the caller's thread when the loop is waiting (no
  wake-up of the I/O thread); when the loop is busy, the item joins a deque and one
  ``add_callback_threadsafe`` has the loop publish everything gathered in one write.
- :meth:`AmqpWorker.wait_for` lets a caller blocked in a call run the loop itself until its
  reply arrives, so a call costs no hand-over between threads at all. One caller at a time
  drives the loop, and only until its own call ends; the others wait on their own futures,
  which the driver finishes as it reads their replies. Nobody holds the lock while waiting
  for I/O, and no user code runs under it (done-callbacks run on the client's callback
  thread), so no caller ever waits for another caller's call.

Items submitted with ``confirm=True`` (notifications) go out on a second channel in
publisher-confirm mode and count against a bounded buffer until the broker confirms them; if
the connection drops first they are published again after reconnecting (at-least-once).
Calls use a channel without confirms: the broker would otherwise ack every request.
"""

from __future__ import annotations

import collections
import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.channel
import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.select_connection import IOLoop

from isc.core import (
    BufferFullError,
    ClientClosedError,
    ConnectionLostError,
    Envelope,
    WrongThreadError,
    redact_url,
)

from . import _process
from ._frames import (
    INCOMPLETE,
    Delivery,
    ack_frame,
    encode_properties,
    parse_delivery,
    publish_frames,
    salvage_header,
)
from ._future import FutureResult
from ._threadloop import SharedIOLoop, shared_ioloop

__all__ = ["AmqpWorker", "Outgoing", "received_envelope"]

log = logging.getLogger("isc.client")

_FRAME_SIZE = struct.Struct(">I")


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
    ) -> None:
        self.envelope = envelope
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


class _BatchingConnection(pika.SelectConnection):  # type: ignore[misc]
    """A ``SelectConnection`` tuned for isc's traffic: few system calls, no generic codec.

    Writes:

    - pika gives the transport every frame on its own, and the transport sends each with its
      own ``send()``: a published message is three system calls (method, header, body) and
      three TCP segments, an ack a fourth. Between :meth:`start_batch` and :meth:`end_batch`
      the worker collects the frames of a whole batch of publishes and acks and writes them
      as one buffer.
    - pika's transport also never sends right away: it queues the data, asks the poller to
      watch the socket for writability and sends on the next pass of the loop, which costs
      two poller changes and a pass per write. When nothing is queued, :meth:`_write` sends
      the data itself and hands the transport only what the socket did not take.
    - Its channels (:class:`_FastChannel`) encode publishes and acks with
      :mod:`isc.client._frames` instead of pika's object-by-object marshalling.

    Reads: :meth:`_on_data_available` reads each whole ``Basic.Deliver`` message in the
    buffer with :func:`~isc.client._frames.parse_delivery` and hands it to its consumer, as
    pika's channel would; every other frame (and any message that parser leaves alone) goes
    through pika's own decoder and dispatch, one frame at a time, as before. On plain TCP
    the transport reads in larger bites and stops at a short read (:class:`_PlaintextTransport`).

    Hostile input never costs the connection: a content header whose values cannot be decoded
    reaches its consumer with :class:`~isc.client._frames.UndecodableProperties` on either
    path (pika's decoder raising on one is answered by
    :func:`~isc.client._frames.salvage_header`), and a consumer that raises on a delivery is
    logged and counted in :attr:`failed_deliveries`, its message rejected without requeue
    when the consumer acks by hand (:meth:`_delivery_failed`).

    (``_adapter_emit_data``, ``_on_data_available``, ``_process_frame``, ``_create_channel``
    and ``_proto_connection_made`` are pika's own seams in every 1.x release; the unit tests
    check each against the installed pika. If the transport's internals changed,
    :func:`_direct_socket` finds no socket and pika sends as it always did.)
    """

    _isc_batch: list[bytes] | None = None
    _frame_buffer: bytes  # pika's read buffer
    #: deliveries whose consumer raised (each logged, and rejected if not auto-acked)
    failed_deliveries = 0

    def _create_channel(
        self, channel_number: int, on_open_callback: Callable[..., Any]
    ) -> _FastChannel:
        return _FastChannel(self, channel_number, on_open_callback)

    def _proto_connection_made(self, transport: Any) -> None:
        if _PLAINTEXT and type(transport) is _PLAINTEXT[0]:
            transport.__class__ = _PLAINTEXT[1]  # the same object, reading in larger bites
        super()._proto_connection_made(transport)

    def send_frames(self, data: bytes, frames: int) -> None:
        """Send ``frames`` already-encoded frames (pika's ``_send_frame``, without encoding)."""
        if self.is_closed:
            raise pika.exceptions.ConnectionWrongStateError(
                "Attempted to send a frame on closed connection."
            )
        self.bytes_sent += len(data)
        self.frames_sent += frames
        self._adapter_emit_data(data)

    def start_batch(self) -> None:
        """Collect outgoing frames from now on."""
        self._isc_batch = []

    def end_batch(self) -> None:
        """Hand the frames collected since :meth:`start_batch` to the transport at once."""
        batch, self._isc_batch = self._isc_batch, None
        if batch:
            self._write(batch[0] if len(batch) == 1 else b"".join(batch))

    def _adapter_emit_data(self, data: bytes) -> None:
        batch = self._isc_batch
        if batch is None:
            self._write(data)
        else:
            batch.append(data)

    def _write(self, data: bytes) -> None:
        sock = _direct_socket(getattr(self, "_transport", None))
        if sock is not None:
            try:
                sent = sock.send(data)
            except OSError:  # would block, or broken: the transport handles both as usual
                sent = 0
            if sent >= len(data):
                return
            data = data[sent:]
        super()._adapter_emit_data(data)

    def _on_data_available(self, data_in: bytes) -> None:
        if self.connection_state != self.CONNECTION_OPEN:
            super()._on_data_available(data_in)  # the handshake, or closing: all pika's
            return
        buffer = self._frame_buffer + data_in if self._frame_buffer else data_in
        self._frame_buffer = buffer  # whatever a callback does, pika sees consistent state
        size = len(buffer)
        offset = 0
        rest_to_pika = False
        try:
            while offset < size:
                found = parse_delivery(buffer, offset)
                if found == INCOMPLETE:
                    break
                target = self._consumer_of(found) if isinstance(found, Delivery) else None
                if target is not None:
                    assert isinstance(found, Delivery)
                    channel, consumer = target
                    self.bytes_received += found.end - offset
                    offset = found.end
                    self.frames_received += found.frames
                    try:
                        consumer(channel, found.method, found.properties, found.body)
                    except Exception:
                        self._delivery_failed(channel, found.method)
                else:  # any other frame: pika decodes and dispatches it, as it always did
                    if size - offset < 7:
                        break
                    end = offset + 8 + _FRAME_SIZE.unpack_from(buffer, offset + 3)[0]
                    if end > size:
                        break
                    frame = buffer[offset:end]
                    try:
                        consumed, frame_value = pika.frame.decode_frame(frame)
                    except Exception as exc:  # a content header with undecodable values?
                        frame_value = salvage_header(frame, exc)
                        if frame_value is None:
                            raise  # a broken frame: the stream cannot be trusted any more
                        consumed = end - offset
                    offset = end
                    self.bytes_received += consumed
                    self._process_frame(frame_value)
                if self._frame_buffer is not buffer:
                    return  # the connection was torn down and reset: drop the rest, as pika does
                if self.connection_state != self.CONNECTION_OPEN:
                    rest_to_pika = True  # closing: pika reads what is left its own way
                    break
        finally:
            if self._frame_buffer is buffer:
                self._frame_buffer = buffer[offset:] if offset else buffer
        if rest_to_pika and self._frame_buffer:
            super()._on_data_available(b"")

    def _delivery_failed(self, channel: pika.channel.Channel, method: Any) -> None:
        """A consumer raised on ``method``'s delivery: log it, count it, and reject the
        message without requeueing it when the consumer acks by hand (the broker would
        otherwise hold its prefetch slot until the connection closes)."""
        self.failed_deliveries += 1
        tag = getattr(method, "delivery_tag", 0)
        consumer_tag = getattr(method, "consumer_tag", None)
        manual_ack = consumer_tag not in channel._consumers_with_noack
        log.exception(
            "the consumer %r on channel %d raised on delivery %d; %s",
            consumer_tag,
            channel.channel_number,
            tag,
            "rejected without requeue" if manual_ack else "dropped",
        )
        if manual_ack and channel.is_open:
            try:
                channel.basic_reject(tag, requeue=False)
            except Exception:  # the channel is closing: the broker requeues it itself
                log.debug("could not reject delivery %d", tag, exc_info=True)

    def _consumer_of(
        self, delivery: Delivery
    ) -> tuple[pika.channel.Channel, Callable[..., None]] | None:
        """The channel and consumer pika's channel would give ``delivery`` to, if it is that
        simple: an open channel, and a consumer that is not being cancelled."""
        channel = self._channels.get(delivery.channel)
        if channel is None:
            return None
        tag = delivery.method.consumer_tag
        consumer = channel._consumers.get(tag)
        if consumer is None or tag in channel._cancelled:
            return None  # pika logs or rejects it
        return channel, consumer


class _FastChannel(pika.channel.Channel):  # type: ignore[misc]
    """A pika channel that publishes pre-encoded messages and acks without pika's codec."""

    connection: _BatchingConnection

    def publish_encoded(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: bytes,
        *,
        mandatory: bool = False,
    ) -> None:
        """``basic_publish`` with properties from :func:`~isc.client._frames.encode_properties`."""
        self._raise_if_not_open()
        max_body = self.connection._body_max_length
        data = publish_frames(
            self.channel_number,
            exchange,
            routing_key,
            body,
            properties,
            mandatory=mandatory,
            max_body_frame=max_body,
        )
        self.connection.send_frames(data, 2 + (len(body) + max_body - 1) // max_body)

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None:
        """Acknowledge one message, or every one up to ``delivery_tag`` with ``multiple``."""
        self._raise_if_not_open()
        self.connection.send_frames(ack_frame(self.channel_number, delivery_tag, multiple), 1)

    def _on_deliver(self, method_frame: Any, header_frame: Any, body: bytes) -> None:
        # The deliveries pika assembles (large or interleaved messages): a consumer that
        # raises costs the message, not the connection, as on the fast path.
        try:
            super()._on_deliver(method_frame, header_frame, body)
        except Exception:
            self.connection._delivery_failed(self, method_frame.method)


try:
    from pika.adapters.utils.io_services_utils import _AsyncPlaintextTransport
except ImportError:  # pragma: no cover - a pika without this class: no direct writes
    _AsyncPlaintextTransport = None


if _AsyncPlaintextTransport is not None:

    class _PlaintextTransport(_AsyncPlaintextTransport):  # type: ignore[misc]
        """pika's plaintext transport, reading up to 64 KiB at a time until a read comes up
        short, instead of 4 KiB at a time until the socket says it would block.

        The loop polls level-triggered, so data that arrives after a short read is reported
        on its next pass: the extra ``recv()`` that would fail with ``EAGAIN`` (a system call
        and a Python exception, on every message received) is not needed.
        """

        _RECV_BYTES = 65536

        def _consume(self) -> None:
            consumed = 0
            while self._state == self._STATE_ACTIVE and consumed < self._MAX_CONSUME_BYTES:
                data = self._sigint_safe_recv(self._sock, self._RECV_BYTES)
                if not data:
                    raise self.RxEndOfFile()
                consumed += len(data)
                self._protocol.data_received(data)
                if len(data) < self._RECV_BYTES:
                    return

    _PLAINTEXT: tuple[type, ...] = (_AsyncPlaintextTransport, _PlaintextTransport)
else:  # pragma: no cover
    _PLAINTEXT = ()


def _direct_socket(transport: Any) -> Any:
    """The plain TCP socket to write to directly, if ``transport`` has nothing queued."""
    if type(transport) not in _PLAINTEXT:
        return None  # TLS (its writes may need reads) or an unknown transport: pika writes
    try:
        if transport._state != transport._STATE_ACTIVE or transport.get_write_buffer_size():
            return None
        return transport._sock
    except AttributeError:  # pragma: no cover - pika's internals changed
        return None


ReturnHandler = Callable[[pika.spec.Basic.Return, pika.spec.BasicProperties], None]
#: Declares what a connection needs on its fresh channel, then calls ``ready()``.
SetupHandler = Callable[["pika.channel.Channel", Callable[[], None]], None]


class AmqpWorker:
    """Owns the connection, the topology and the reply queue; reconnects with backoff."""

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
        on_channel_error: Callable[[BaseException], None] | None = None,
        ioloop_factory: Callable[[], IOLoop] | None = None,
    ) -> None:
        self.url = url
        self.exchange = exchange
        self._params = pika.URLParameters(url)
        self._params.socket_timeout = connect_timeout
        self._params.stack_timeout = max(connect_timeout, 1.0) * 2
        self._params.connection_attempts = 1
        self._params.client_properties = {"connection_name": f"{name} pid={os.getpid()}"}
        self._reconnect_timeout = reconnect_timeout
        self._setup = setup
        self._on_return = on_return
        self._on_disconnect = on_disconnect
        self._name = name
        self._log = logger or log

        # The node passes a gevent-aware loop (isc.server); the client never imports gevent.
        # A client's own loop is a SharedIOLoop where it can be: callers then publish on
        # their own thread instead of waking the I/O thread (see submit()).
        #: The process this worker belongs to (see :mod:`isc.client._process`): a forked
        #: child must not touch it, a process patched by gevent since needs another.
        self.fork_generation = _process.fork_generation()
        self.gevent_mode = _process.gevent_patched() or ioloop_factory is not None
        if ioloop_factory is not None:
            self._ioloop = ioloop_factory()
        else:
            self._ioloop = shared_ioloop() or IOLoop()
        self._shared: SharedIOLoop | None = (
            self._ioloop if isinstance(self._ioloop, SharedIOLoop) else None
        )
        self._thread: threading.Thread | None = None
        self._inbox: collections.deque[Outgoing] = collections.deque()
        self._parked: collections.deque[Outgoing] = collections.deque()
        self._flush_scheduled = False
        # Publisher confirms: the channel's publish sequence number -> item awaiting its ack.
        self._publish_seq = 0
        self._unconfirmed: dict[int, Outgoing] = {}
        self._max_buffered = max_buffered
        self._confirms = confirms
        self._on_channel_error = on_channel_error
        self._buffered = 0  # confirm=True items accepted and not yet confirmed
        self._buffer_changed = threading.Condition(threading.Lock())
        #: Counters: items published again after a reconnect, items the broker nacked,
        #: confirm=True items abandoned at shutdown.
        self.stats = {"republished": 0, "nacked": 0, "abandoned": 0}
        self._connection: _BatchingConnection | None = None
        self._channel: _FastChannel | None = None
        #: A second channel, in publisher-confirm mode, for confirm=True items (with confirms).
        self._confirm_channel: _FastChannel | None = None
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
        connection = self._connection
        transport = getattr(connection, "_transport", None)
        sock = getattr(transport, "_sock", None)
        if sock is not None:
            sock.close()  # the child's descriptor only: the parent's connection lives on
        poller = getattr(self._ioloop, "_poller", None)
        close = getattr(poller, "close_after_fork", None)
        if close is not None:
            close()
        else:  # pika's own poller (gevent mode): its wake-up socket pair
            for name in ("_r_interrupt", "_w_interrupt"):
                pair_end = getattr(poller, name, None)
                if pair_end is not None:
                    pair_end.close()
        self._inbox.clear()
        self._parked.clear()
        self._unconfirmed.clear()
        self._buffered = 0
        self.stopped.set()

    def submit(self, item: Outgoing, *, batch: bool = False) -> None:
        """Publish ``item`` (thread-safe): at once from this thread when the loop is shared
        and waiting, else on the loop's next pass. ``batch=True`` (more items will follow
        soon) always leaves it to the loop, which publishes what has gathered in one write.

        Raises :class:`BufferFullError` when ``item.confirm`` is set and ``max_buffered``
        confirmed items are already waiting for the broker.
        """
        if self._stopping:
            raise ClientClosedError("the client is stopped")
        if item.confirm:
            with self._buffer_changed:
                if self._buffered >= self._max_buffered:
                    raise BufferFullError(
                        f"{self._buffered} notifications are waiting for the broker at "
                        f"{redact_url(self.url)} (the limit is {self._max_buffered}); "
                        "retry once the connection is back, or raise max_buffered_notifications"
                    )
                self._buffered += 1
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
        return self._buffered

    def wait_confirmed(self, timeout: float | None = None) -> bool:
        """Wait until the broker confirmed every ``confirm=True`` item; return whether it did."""
        with self._buffer_changed:
            return self._buffer_changed.wait_for(lambda: self._buffered == 0, timeout)

    def _release(self, count: int) -> None:
        with self._buffer_changed:
            self._buffered -= count
            if self._buffered <= 0:
                self._buffered = 0
                self._buffer_changed.notify_all()

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
        self._connection = _BatchingConnection(
            self._params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_error,
            on_close_callback=self._on_connection_closed,
            custom_ioloop=self._ioloop,
        )

    def _schedule_reconnect(self) -> None:
        if self._stopping:
            self._ioloop.stop()
            return
        if self._reconnect_timeout <= 0:
            self._log.error("not reconnecting to %s (reconnect_timeout=0)", redact_url(self.url))
            return
        delay = min(self._reconnect_timeout, 0.1 * (2**self._attempt))
        self._attempt += 1
        self._log.info("reconnecting to %s in %.1fs", redact_url(self.url), delay)
        self._ioloop.call_later(delay, self._connect)

    def _on_connection_error(self, connection: Any, error: BaseException) -> None:
        error = root_cause(error)
        self.last_error = error
        self._log.warning("cannot connect to %s: %s", redact_url(self.url), _describe(error))
        self._connection = None
        self._schedule_reconnect()

    def _on_connection_closed(self, connection: Any, reason: BaseException) -> None:
        was_ready = self.ready.is_set()
        self.ready.clear()
        self._channel = None
        self._confirm_channel = None
        self._connection = None
        self._requeue_unconfirmed()
        if self._stopping:
            self._ioloop.stop()
            return
        self.last_error = reason
        self._log.warning("connection to %s lost: %s", redact_url(self.url), _describe(reason))
        if was_ready:
            self._on_disconnect(ConnectionLostError(f"connection lost: {_describe(reason)}"))
        self._schedule_reconnect()

    def _on_connection_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_channel_open(self, channel: _FastChannel) -> None:
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

    def _on_confirm_channel_open(self, channel: _FastChannel) -> None:
        self._confirm_channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        self._requeue_unconfirmed()
        self._publish_seq = 0  # delivery tags count the messages published after Confirm.Select
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
        while self._parked:
            self._publish(self._parked.popleft())
        self._flush()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if self._stopping or self._connection is None:
            return
        self._log.warning("channel closed by the broker: %s; reconnecting", _describe(reason))
        if self._on_channel_error is not None:
            self._on_channel_error(reason)
        if self._connection.is_open:
            self._connection.close()

    def _requeue_unconfirmed(self) -> None:
        """Put the items the lost channel never confirmed back in front of the parked ones."""
        if not self._unconfirmed:
            return
        items = list(self._unconfirmed.values())
        self._unconfirmed.clear()
        self.stats["republished"] += len(items)
        self._log.info("%d unconfirmed message(s) will be published again", len(items))
        self._parked.extendleft(reversed(items))

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        if method.multiple:
            tags = []
            for t in self._unconfirmed:  # insertion order is publish order
                if t > tag:
                    break
                tags.append(t)
        else:
            tags = [tag] if tag in self._unconfirmed else []
        items = [self._unconfirmed.pop(t) for t in tags]
        if not items:
            return
        if isinstance(method, pika.spec.Basic.Nack):
            # The broker could not take them (an internal error): try again.
            self.stats["nacked"] += len(items)
            self._log.warning("the broker refused %d message(s); publishing again", len(items))
            for item in items:
                self._publish(item)
            return
        self._release(len(items))

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
            connection.start_batch()  # one send() for the whole batch
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
                connection.end_batch()

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
        properties = encode_properties(
            envelope.content_type,
            envelope.content_encoding,
            envelope.headers,
            envelope.correlation_id,
            self.reply_to if item.wants_reply else None,
            expiration,
        )
        confirmed = item.confirm and self._confirms
        channel = self._confirm_channel if confirmed else self._channel
        assert channel is not None
        try:
            channel.publish_encoded(
                item.exchange, item.key, envelope.body, properties, mandatory=item.mandatory
            )
        except pika.exceptions.AMQPError as exc:
            self._log.warning("publish failed (%s); will retry after reconnecting", _describe(exc))
            self._parked.appendleft(item)
            return
        if confirmed:
            self._publish_seq += 1
            self._unconfirmed[self._publish_seq] = item
        elif item.confirm:
            self._release(1)  # nothing to wait for on a connection without confirms
        if item.on_published is not None:
            item.on_published()

    def _shutdown(self) -> None:
        self._stopping = True
        self.ready.clear()
        waiting = [*self._inbox, *self._parked, *self._unconfirmed.values()]
        abandoned = sum(1 for item in waiting if item.confirm)
        if abandoned:
            self.stats["abandoned"] += abandoned
            self._log.warning(
                "stopping with %d notification(s) the broker has not confirmed; "
                "they may not have been delivered",
                abandoned,
            )
        self._inbox.clear()
        self._parked.clear()
        self._unconfirmed.clear()
        self._release(self._buffered)
        connection = self._connection
        if connection is not None and not (connection.is_closed or connection.is_closing):
            connection.close()
            return  # _on_connection_closed stops the loop
        if connection is not None and connection.is_closing:
            return
        self._ioloop.stop()


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
