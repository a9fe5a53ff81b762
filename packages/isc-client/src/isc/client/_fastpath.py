"""The fast path: every use of pika's private names in isc, in this one module.

isc runs on pika's public API alone (:mod:`isc.client._wire`); this module makes it faster
by reaching into pika where pika has no public seam:

- **Frames** (:class:`_BatchingConnection`, :class:`_FastChannel`): isc's own messages are
  encoded and decoded by :mod:`isc.client._frames` in a few ``struct`` calls, and written
  in one ``send()`` per batch, instead of pika's object-by-object codec and one system call
  per frame. Its reader also salvages a message whose properties pika cannot decode, so a
  hostile header costs that message, not the connection (docs/reliability.md).
- **A shared loop** (:class:`SharedIOLoop`): caller threads publish on their own thread
  while the I/O thread waits, and a blocked caller reads its own reply (no hand-over
  between threads); see :class:`SharedEPollPoller`.
- **gevent** (:func:`gevent_ioloop`): the node's loop waits on gevent's hub with persistent
  io watchers instead of pika's ``select.poll`` emulation.
- **Forks** (:func:`close_after_fork`): a forked child closes its copies of the parent's
  descriptors without touching the epoll instances they share.

It is used only with the pika releases the tests cover (:data:`TESTED_PIKA`), and can be
switched off with ``ISC_PIKA_FASTPATH=0`` or ``fastpath=False`` on a ``Client`` or a
``Node`` (:func:`isc.client._wire.select_wire`): isc then runs on stock pika, a hand-over
slower per call, and pika's own decoder reads every frame. The unit tests check each private
name used here against the installed pika.
"""

from __future__ import annotations

import logging
import select
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
from pika.adapters.select_connection import IOLoop, PollEvents, PollPoller, _PollerBase

from isc.core import Envelope

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
from ._wire import Wire

__all__ = [
    "TESTED_PIKA",
    "FastWire",
    "SharedEPollPoller",
    "SharedIOLoop",
    "SharedPollerMixin",
    "close_after_fork",
    "gevent_ioloop",
    "gevent_loop_types",
    "shared_ioloop",
]

log = logging.getLogger("isc.client")

#: The pika releases (major, minor) whose internals this module was written and tested for.
TESTED_PIKA = ((1, 3), (1, 4))

_FRAME_SIZE = struct.Struct(">I")

#: How late a timer may run rather than wake the waiting loop for it (the loop computes its
#: wait from the same timers, a few microseconds apart).
_TIMER_SLACK = 0.005


class SharedPollerMixin:
    """What makes a pika poller shareable: a :attr:`lock` its loop holds except while it waits.

    A poller class lists this mixin first and calls :meth:`_released_wait` around the call
    that blocks; ``_current()`` names the running thread (or greenlet).

    The lock is only ever held for short, bounded work (dispatching events, publishing):
    whoever waits for I/O, the loop's own thread or a driver, lets go of it first, and no
    user code runs under it. A thread that takes it therefore never waits for another
    caller's call.
    """

    _get_max_wait: Callable[[], float]
    _get_wait_seconds: Callable[[], float | None]
    wake_threadsafe: Callable[[], None]

    def _init_shared(self, lock: Any) -> None:
        #: Held by the loop except while it waits for I/O; whoever holds it may use the
        #: connection as if it ran on the loop.
        self.lock = lock
        #: The monotonic time the loop thread's current wait ends (0 while not waiting).
        self.waiting_until = 0.0
        #: The same for the driver's current wait (0 while nobody drives or it does not wait).
        self.driver_waiting_until = 0.0
        self._owner: object = None  # the loop's thread (or greenlet) while it runs
        self._driver: object = None  # another thread running the loop for a while (drive())

    @staticmethod
    def _current() -> object:
        return threading.get_ident()

    def in_loop(self) -> bool:
        """Whether the caller runs the loop now: its own thread (or greenlet), or a driver."""
        current = self._current()
        return current == self._driver or (self._owner is not None and current == self._owner)

    def is_loop_thread(self) -> bool:
        """Whether the caller is the loop's own thread (or greenlet)."""
        return self._owner is not None and self._current() == self._owner

    @property
    def driven(self) -> bool:
        """Whether another thread drives the loop now (see :meth:`drive`)."""
        return self._driver is not None

    def start(self) -> None:
        """Run the loop, holding :attr:`lock` except while waiting for events."""
        with self.lock:
            self._owner = self._current()
            try:
                super().start()  # type: ignore[misc]
            finally:
                self._owner = None

    def _released_wait(self, wait: Callable[[float], Any]) -> Any:
        """``wait(timeout)`` for the loop's next wait, with :attr:`lock` released."""
        timeout = self._get_max_wait()
        self.waiting_until = time.monotonic() + timeout
        self.lock.release()
        try:
            return wait(timeout)
        finally:
            self.lock.acquire()
            self.waiting_until = 0.0

    def wake_if_later_than(self, deadline: float) -> None:
        """Wake whoever waits for the loop's events (its thread, or the driver) if that wait
        ends after ``deadline`` (monotonic); call this holding :attr:`lock` after adding a
        timer from outside the loop."""
        until = self.driver_waiting_until if self._driver is not None else self.waiting_until
        if until > deadline + _TIMER_SLACK:
            self.wake_threadsafe()

    def drive(self, until: Callable[[], bool], timeout: float) -> bool:
        """Run the loop on this thread until ``until()`` or ``timeout``; False if this poller
        cannot be driven (the caller then simply waits). Call it holding :attr:`lock`."""
        return False


class SharedEPollPoller(SharedPollerMixin, PollPoller):  # type: ignore[misc]
    """pika's epoll poller, whose :attr:`lock` the I/O thread holds except while it waits.

    Its descriptors are registered with one epoll instance, which the I/O thread does not
    wait on directly: it waits on a second epoll instance that holds only the first. That
    lets another thread *drive* the loop (:meth:`drive`): it takes the first instance out of
    the second, so the sleeping I/O thread is not woken by what arrives, and waits on it
    itself, dispatching the events and running the timers, as the I/O thread would have.
    A thread blocked in a call thus reads its own reply, with no hand-over between threads
    (each one costs several futex calls on the GIL and a context switch).

    One thread drives at a time, and only until its own call ends; it lets go of the lock
    while it waits, like the I/O thread, so other threads publish meanwhile, and the replies
    it reads for them finish their futures at once. While a driver drives, the I/O thread
    wakes only for timers and leaves the descriptors to the driver.
    """

    POLL_TIMEOUT_MULT = 1  # epoll takes seconds

    def __init__(
        self,
        get_wait_seconds: Callable[[], float | None],
        process_timeouts: Callable[[], None],
    ) -> None:
        self._init_shared(threading.Lock())
        self._outer: select.epoll | None = None  # what the I/O thread waits on
        super().__init__(get_wait_seconds, process_timeouts)

    @staticmethod
    def _create_poller() -> select.epoll:
        return select.epoll()

    def _init_poller(self) -> None:
        super()._init_poller()
        self._outer = select.epoll()
        self._outer.register(self._poll.fileno(), select.EPOLLIN)

    def _uninit_poller(self) -> None:
        if self._outer is not None:
            self._outer.close()
            self._outer = None
        super()._uninit_poller()

    def poll(self) -> None:
        """Wait (lock released) until a descriptor is ready, then dispatch (holding it)."""
        outer = self._outer
        if outer is None:  # pragma: no cover - not activated
            return
        self._released_wait(outer.poll)
        if self._driver is None:  # else the driver reads the descriptors; timers are ours
            self._dispatch(self._poll.poll(0))

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        if events:
            ready: dict[int, int] = {}
            for fileno, event in events:
                ready[fileno] = ready.get(fileno, 0) | event
            self._dispatch_fd_events(ready)

    def drive(self, until: Callable[[], bool], timeout: float) -> bool:
        """Run the loop on this thread until ``until()`` or ``timeout`` (holding the lock,
        which it releases while it waits). False, at once, if the loop is not running or
        another thread drives it."""
        outer, inner = self._outer, self._poll
        if (
            outer is None
            or inner is None
            or not self._running
            or self._stopping
            or self._driver is not None
        ):
            return False
        deadline = time.monotonic() + timeout
        outer.unregister(inner.fileno())
        self._driver = self._current()
        lock = self.lock
        try:
            while not until() and not self._stopping:
                wait = min(self._get_max_wait(), deadline - time.monotonic())
                if wait < 0:
                    break
                self.driver_waiting_until = time.monotonic() + wait
                lock.release()
                try:
                    events = inner.poll(wait)
                except (OSError, ValueError):  # closed while this thread waited
                    events = []
                finally:
                    lock.acquire()
                    self.driver_waiting_until = 0.0
                if self._poll is not inner or not self._running:
                    break  # the I/O thread ended the loop while this thread waited
                self._dispatch(events)
                self._process_timeouts()
        finally:
            self._driver = None
            if self._outer is outer and self._poll is inner:  # still the loop's descriptors
                outer.register(inner.fileno(), select.EPOLLIN)  # events wake the I/O thread
                # The I/O thread's wait was computed before this thread added or ran
                # timers. (A stop() here left its wake-up byte unread: the I/O thread wakes.)
                remaining = self._get_wait_seconds()
                if remaining is not None:
                    self.wake_if_later_than(time.monotonic() + remaining)
        return True


class SharedIOLoop(IOLoop):  # type: ignore[misc]
    """pika's ``IOLoop`` over a shared poller (:class:`SharedEPollPoller` by default)."""

    _poller: SharedPollerMixin

    @staticmethod
    def _get_poller(
        get_wait_seconds: Callable[[], float | None], process_timeouts: Callable[[], None]
    ) -> SharedPollerMixin:
        return SharedEPollPoller(get_wait_seconds, process_timeouts)

    @property
    def lock(self) -> Any:
        """The poller's lock: hold it to use the connection from outside the loop."""
        return self._poller.lock

    def in_loop(self) -> bool:
        """Whether the caller is the loop's own thread (or greenlet)."""
        return self._poller.in_loop()

    def wake_if_later_than(self, deadline: float) -> None:
        """See :meth:`SharedPollerMixin.wake_if_later_than`."""
        self._poller.wake_if_later_than(deadline)

    def drive(self, until: Callable[[], bool], timeout: float) -> bool:
        """See :meth:`SharedPollerMixin.drive`."""
        return self._poller.drive(until, timeout)

    @property
    def driven(self) -> bool:
        """Whether a thread other than the loop's drives it now."""
        return self._poller.driven

    def is_loop_thread(self) -> bool:
        """Whether the caller is the loop's own thread."""
        return self._poller.is_loop_thread()

    def wake_threadsafe(self) -> None:
        """Wake whoever waits for the loop's events (thread-safe)."""
        self._poller.wake_threadsafe()


def shared_ioloop() -> SharedIOLoop | None:
    """A :class:`SharedIOLoop` where it works (plain threads, ``select.epoll``), else None."""
    if not hasattr(select, "epoll") or _process.gevent_patched():
        return None
    return SharedIOLoop()


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


# -- the wire ----------------------------------------------------------------------------------


class FastWire(Wire):
    """The worker's wire through this module: shared loops, isc's frames, batched writes."""

    fast = True
    name = "fast path"
    connection_class = _BatchingConnection

    def ioloop(self, *, gevent: bool) -> IOLoop:
        """A :class:`SharedIOLoop` (on gevent's hub for a node), or pika's own loop where
        none can be shared (a client in a gevent-patched process)."""
        if gevent:
            return gevent_ioloop()
        return shared_ioloop() or IOLoop()

    def shares_loop(self, ioloop: IOLoop) -> bool:
        """Whether ``ioloop`` is a :class:`SharedIOLoop`."""
        return isinstance(ioloop, SharedIOLoop)

    def publish(
        self,
        channel: pika.channel.Channel,
        exchange: str,
        routing_key: str,
        envelope: Envelope,
        *,
        reply_to: str | None,
        expiration: str | None,
        mandatory: bool,
        persistent: bool = False,
    ) -> None:
        """Publish with isc's frame encoder (:meth:`_FastChannel.publish_encoded`)."""
        properties = encode_properties(
            envelope.content_type,
            envelope.content_encoding,
            envelope.headers,
            envelope.correlation_id,
            reply_to,
            expiration,
            2 if persistent else None,
        )
        channel.publish_encoded(
            exchange, routing_key, envelope.body, properties, mandatory=mandatory
        )

    def start_batch(self, connection: Any) -> None:
        """Collect the frames published from now on (:meth:`_BatchingConnection.start_batch`)."""
        connection.start_batch()

    def end_batch(self, connection: Any) -> None:
        """Write the collected frames at once."""
        connection.end_batch()

    def close_after_fork(self, ioloop: IOLoop, connection: Any) -> None:
        """See :func:`close_after_fork`."""
        close_after_fork(ioloop, connection)


def close_after_fork(ioloop: IOLoop, connection: Any) -> None:
    """In a forked child: close this process's copies of the connection's socket and of the
    loop's descriptors, without a byte on the wire and without unregistering anything from
    the epoll instances the parent still uses (that would change the parent's)."""
    sock = getattr(getattr(connection, "_transport", None), "_sock", None)
    if sock is not None:
        sock.close()  # the child's descriptor only: the parent's connection lives on
    poller = getattr(ioloop, "_poller", None)
    for name in ("_outer", "_poll"):
        epoll = getattr(poller, name, None)
        if epoll is not None and hasattr(epoll, "close"):
            epoll.close()
            setattr(poller, name, None)
    for name in ("_r_interrupt", "_w_interrupt"):
        end = getattr(poller, name, None)
        if end is not None:
            end.close()
            setattr(poller, name, None)


# -- gevent ------------------------------------------------------------------------------------

_GEVENT_TYPES: tuple[type[SharedIOLoop], type[SharedPollerMixin]] | None = None


def gevent_ioloop() -> SharedIOLoop:
    """A pika ``IOLoop`` running on gevent's hub (for the node). Imports gevent: only isc.server
    calls it, so that isc-client alone never does."""
    return gevent_loop_types()[0]()


def gevent_loop_types() -> tuple[type[SharedIOLoop], type[SharedPollerMixin]]:
    """The classes of :func:`gevent_ioloop`'s loop and poller (defined on first use)."""
    global _GEVENT_TYPES
    if _GEVENT_TYPES is None:
        _GEVENT_TYPES = _define_gevent_loop()
    return _GEVENT_TYPES


def _define_gevent_loop() -> tuple[type[SharedIOLoop], type[SharedPollerMixin]]:
    import gevent
    import gevent.hub
    import gevent.lock

    # gevent's (libev's and libuv's) io event bits.
    _GEVENT_READ = 1
    _GEVENT_WRITE = 2

    def _to_gevent(events: int) -> int:
        mask = 0
        if events & (PollEvents.READ | PollEvents.ERROR):
            mask |= _GEVENT_READ
        if events & PollEvents.WRITE:
            mask |= _GEVENT_WRITE
        return mask

    class GeventPoller(SharedPollerMixin, _PollerBase):  # type: ignore[misc]
        """A pika poller with one persistent gevent io watcher per file descriptor.

        Ready events are collected by the watchers' callbacks (on the hub) into a map that the
        next :meth:`poll` dispatches; :meth:`poll` only blocks, on a gevent ``Waiter``, when
        nothing is ready and no callback is pending. While it blocks, its :attr:`lock` (a gevent
        semaphore) is free: a request greenlet that takes it may publish its reply itself.
        """

        def __init__(
            self,
            get_wait_seconds: Callable[[], float | None],
            process_timeouts: Callable[[], None],
        ) -> None:
            self._loop: Any = None  # the gevent loop, while the poller is active
            self._watchers: dict[int, Any] = {}  # fd -> gevent io watcher
            self._ready: dict[int, int] = {}  # fd -> pika events seen since the last dispatch
            self._waiter: gevent.hub.Waiter[Any] | None = None  # set while poll() blocks
            self._async: Any = None  # the thread-safe wake-up watcher
            self._woken = False
            self._init_shared(gevent.lock.Semaphore())
            super().__init__(get_wait_seconds, process_timeouts)

        @staticmethod
        def _current() -> object:
            return gevent.getcurrent()

        # -- waking up --------------------------------------------------------------------------

        def wake_threadsafe(self) -> None:
            """Wake the loop as soon as possible (thread-safe)."""
            wake = self._async
            if wake is not None:
                wake.send()
            else:  # not running yet or any more: pika's interrupt socket will do
                super().wake_threadsafe()

        def _on_wake(self) -> None:
            self._woken = True
            self._switch()

        def _switch(self) -> None:
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None  # later events are only recorded, for the next poll()
                waiter.switch(None)

        # -- polling ----------------------------------------------------------------------------

        def poll(self) -> None:
            """Dispatch the ready events, first waiting for some (or a timer) if there are none."""
            if not self._ready and not self._woken:
                self._released_wait(self._wait)
            self._woken = False
            ready, self._ready = self._ready, {}
            if ready:
                self._dispatch_fd_events(ready)

        def _wait(self, delay: float) -> None:
            if delay <= 0:
                return
            waiter: gevent.hub.Waiter[Any] = gevent.hub.Waiter()
            timer = self._loop.timer(delay)
            timer.start(waiter.switch, None)
            self._waiter = waiter
            try:
                waiter.get()
            finally:
                self._waiter = None
                timer.stop()
                timer.close()

        def _on_io(self, events: int, fd: int) -> None:
            pika_events = 0
            if events & _GEVENT_READ:
                pika_events |= PollEvents.READ
            if events & _GEVENT_WRITE:
                pika_events |= PollEvents.WRITE
            self._ready[fd] = self._ready.get(fd, 0) | pika_events
            self._switch()

        # -- pika's poller interface ------------------------------------------------------------

        def _init_poller(self) -> None:
            self._loop = gevent.get_hub().loop
            self._async = self._loop.async_()
            self._async.start(self._on_wake)

        def _uninit_poller(self) -> None:
            for fd in list(self._watchers):
                self._stop_watcher(fd)
            if self._async is not None:
                wake, self._async = self._async, None
                wake.stop()
                wake.close()
            self._loop = None
            self._ready = {}

        def _register_fd(self, fileno: int, events: int) -> None:
            if self._loop is None:
                return  # activate_poller() registers every known descriptor
            self._stop_watcher(fileno)
            watcher = self._loop.io(fileno, _to_gevent(events))
            watcher.start(self._on_io, fileno, pass_events=True)
            self._watchers[fileno] = watcher

        def _modify_fd_events(
            self, fileno: int, events: int, events_to_clear: int, events_to_set: int
        ) -> None:
            if self._loop is None:
                return
            watcher = self._watchers.get(fileno)
            if watcher is None:
                self._register_fd(fileno, events)
                return
            mask = _to_gevent(events)
            if watcher.events == mask:
                return
            watcher.stop()
            watcher.events = mask
            watcher.start(self._on_io, fileno, pass_events=True)
            if events_to_clear and fileno in self._ready:
                # Events recorded before the change may no longer be wanted.
                self._ready[fileno] &= events

        def _unregister_fd(self, fileno: int, events_to_clear: int) -> None:
            self._ready.pop(fileno, None)
            if self._loop is not None:
                self._stop_watcher(fileno)

        def _stop_watcher(self, fileno: int) -> None:
            watcher = self._watchers.pop(fileno, None)
            if watcher is not None:
                watcher.stop()
                watcher.close()

    class GeventIOLoop(SharedIOLoop):
        """pika's ``IOLoop`` running on gevent's hub through a :class:`GeventPoller`."""

        @staticmethod
        def _get_poller(
            get_wait_seconds: Callable[[], float | None], process_timeouts: Callable[[], None]
        ) -> GeventPoller:
            return GeventPoller(get_wait_seconds, process_timeouts)

    return GeventIOLoop, GeventPoller
