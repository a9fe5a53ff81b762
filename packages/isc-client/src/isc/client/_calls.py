"""CallTable: a client's pending calls, and everything the I/O loop does to end them.

It is the part of a :class:`~isc.client.Client` that the I/O thread refers to (the reply
queue's consumer, returned messages, timers, disconnects), and it refers back to no
``Client``: a client dropped without ``stop()`` can therefore be garbage-collected, and its
finalizer stops the I/O thread (see ``Client.__init__``).

Pending calls live in one bounded map keyed by correlation id and always leave it: on their
reply, an error, their timeout, a disconnect, a stop, or when their caller gives up.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pika.spec

from isc.core import (
    AbstractCodec,
    AccessRefusedError,
    ClientClosedError,
    ConnectionLostError,
    DecodeError,
    MessageTooLargeError,
    NoNodeConsumingError,
    Reply,
    ServiceNotFoundError,
    TimeoutException,
    TooManyPendingCallsError,
    fanout_exchange_name,
    redact_url,
    reply_queue_name,
    service_queue_name,
)

from ._callbacks import CallbackRunner
from ._connection import Outgoing, received_envelope
from ._frames import UndecodableProperties
from ._future import FutureResult
from ._transport import AmqpChannel, Transport

__all__ = ["CallTable", "PendingCall"]

log = logging.getLogger("isc.client")

#: After a reconnect, nodes may still be redeclaring their queues (a restarted broker forgets
#: non-durable ones): for this many seconds an unroutable call is retried within its deadline
#: instead of failing with ServiceNotFoundError.
RECONNECT_GRACE = 5.0
_RETRY_DELAY = 0.2

#: A call still unanswered after this many seconds asks the broker, once, whether anybody
#: consumes its service's queue (a passive declaration on a side channel), and fails with
#: NoNodeConsumingError if nobody does. Calls answered sooner cost nothing extra.
NO_CONSUMER_CHECK_AFTER = 0.75


class PendingCall:
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


class CallTable:
    """The pending calls of one client and the I/O loop's handlers that end them."""

    def __init__(
        self,
        url: str,
        exchange: str,
        *,
        max_message_size: int | None,
        max_pending: int,
    ) -> None:
        self.url = url
        self.exchange = exchange
        self.max_message_size = max_message_size
        self.max_pending = max_pending
        self.pending: dict[str, PendingCall] = {}
        #: The current I/O worker (None before the first use and after stop()).
        self.worker: Transport | None = None
        #: The last worker, kept after stop() so that stats stay readable.
        self.last_worker: Transport | None = None
        self.dropped_replies = 0
        self.callbacks = CallbackRunner()
        #: Notified when the connection becomes ready or is refused (see wait_settled()).
        self.settled = threading.Condition()
        #: Why the broker refused the credentials (then the worker stopped for good).
        self.refused: AccessRefusedError | None = None

    # -- adding and ending calls (any thread) ------------------------------------------------

    def add(self, cid: str, call: PendingCall) -> None:
        """Track ``call``; raise :class:`TooManyPendingCallsError` when the table is full."""
        pending = self.pending
        if len(pending) >= self.max_pending:
            raise TooManyPendingCallsError(
                f"{len(pending)} calls are already waiting for their replies (the limit is "
                f"{self.max_pending}); is {call.name.split('.', 1)[0]!r} answering? Wait for "
                "some to finish, or raise max_pending_calls"
            )
        call.future._runner = self.callbacks
        pending[cid] = call
        call.future._add_internal_callback(self.forget)  # a bound method: no reference cycle

    def pop(self, cid: str) -> PendingCall | None:
        """Take a call out of the pending map: cancel its timer and drop its request (and the
        closures that refer back to it, so that the call is freed by reference counting)."""
        call = self.pending.pop(cid, None)
        if call is not None:
            call.outgoing = None
            timer, call.timer = call.timer, None
            worker = self.worker
            if timer is not None and worker is not None:
                worker.call_soon(lambda: worker.cancel_timer(timer))
        return call

    def forget(self, future: concurrent.futures.Future[Any]) -> None:
        """A call's future is done: forget the call, if whoever finished it did not."""
        self.pop(future.extra["correlation_id"])  # type: ignore[attr-defined]

    def fail_pending(self, error: BaseException, *, only_sent: bool) -> None:
        """Fail the pending calls (only those already published, with ``only_sent``)."""
        for cid, call in list(self.pending.items()):
            if only_sent and not call.sent:
                continue
            if self.pop(cid) is not None:
                call.future.reject(type(error)(f"{call.name}: {error}"))
        worker = self.worker
        if worker is not None:
            worker.wake_driver()  # a caller driving the loop may wait for one of them

    def timeout_error(self, name: str, timeout: float) -> TimeoutException:
        """The error of a call that got no reply within ``timeout`` seconds."""
        worker = self.worker
        if worker is not None and not worker.ready.is_set():
            detail = f"; not connected to {redact_url(self.url)}"
            if worker.last_error is not None:
                detail += f" ({type(worker.last_error).__name__}: {worker.last_error})"
            return TimeoutException(f"no reply from {name} within {timeout:g}s{detail}")
        return TimeoutException(f"no reply from {name} within {timeout:g}s")

    def abandon(self) -> None:
        """The client was garbage-collected without ``stop()``: release its I/O thread, its
        sockets and its broker connection (a ``ResourceWarning`` says so)."""
        worker, self.worker = self.worker, None
        self.callbacks.close()
        if worker is None or worker.stopped.is_set():
            # Nothing to close; end the calls left (a call and its future refer to each
            # other through the table until it is popped).
            self.fail_pending(ClientClosedError("the client was dropped"), only_sent=False)
            return
        warnings.warn(
            f"an isc Client for {redact_url(self.url)} was dropped without stop(); its "
            "connection is closed now. Call client.stop() (or use 'with Client(...)')",
            ResourceWarning,
            stacklevel=2,
        )
        worker.stop(timeout=0)
        self.fail_pending(ClientClosedError("the client was dropped"), only_sent=False)

    # -- the I/O loop ------------------------------------------------------------------------

    def setup_channel(self, channel: AmqpChannel, ready: Callable[[], None]) -> None:
        """Declare the exchanges and this connection's reply queue, then consume it."""
        worker = self.worker
        assert worker is not None
        # The same declarations as isclib 1.x, so either side may declare first.
        channel.exchange_declare(
            self.exchange, exchange_type="direct", durable=False, auto_delete=False
        )
        channel.exchange_declare(
            fanout_exchange_name(self.exchange),
            exchange_type="fanout",
            durable=False,
            auto_delete=False,
        )
        channel.add_on_cancel_callback(lambda frame: self.on_reply_queue_cancelled(channel))

        def consuming(_frame: object) -> None:
            ready()  # the transport calls on_ready() once it is ready (confirms may come first)

        worker.reply_to = None
        self.consume_reply_queue(channel, consuming)

    def consume_reply_queue(
        self, channel: AmqpChannel, callback: Callable[[object], None] | None = None
    ) -> None:
        """Declare a new exclusive reply queue, bind it and consume it (on the loop)."""
        worker = self.worker
        assert worker is not None
        queue = reply_queue_name()
        channel.queue_declare(queue, exclusive=True, auto_delete=True)
        # isclib 1.x nodes publish replies to the exchange with routing key = reply_to.
        channel.queue_bind(queue, self.exchange, routing_key=queue)
        if worker.reply_to is not None:
            # Requests published from now on come after the declaration on this channel:
            # their replies find the new queue, which holds them until the consumer starts.
            worker.reply_to = queue

        def consuming(frame: object) -> None:
            worker.reply_to = queue
            if callback is not None:
                callback(frame)

        channel.basic_consume(queue, self.on_delivery, auto_ack=True, callback=consuming)

    def on_reply_queue_cancelled(self, channel: AmqpChannel) -> None:
        """The broker cancelled the reply queue's consumer (the queue was deleted): the calls
        waiting for a reply fail at once (it cannot arrive), and a new reply queue serves the
        calls made from now on."""
        worker = self.worker
        if worker is None or not channel.is_open or worker.channel is not channel:
            return
        log.warning(
            "the broker cancelled this client's reply queue consumer (queue %r deleted?); "
            "calls waiting for a reply fail, and a new reply queue takes over",
            worker.reply_to,
        )
        self.fail_pending(
            ConnectionLostError("the reply queue was deleted by the broker"), only_sent=True
        )
        self.consume_reply_queue(channel)

    def on_delivery(
        self, channel: object, method: object, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        """A message on the reply queue."""
        self.on_reply(properties, body)

    def on_reply(self, properties: pika.spec.BasicProperties, body: bytes) -> None:
        """Finish the call ``properties.correlation_id`` names with the reply in ``body``."""
        cid = properties.correlation_id
        call = self.pop(cid) if cid else None
        undecodable = isinstance(properties, UndecodableProperties)
        if call is None:
            self.dropped_replies += 1
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
        limit = self.max_message_size
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

    def arm_timer(self, worker: Transport, cid: str, call: PendingCall) -> None:
        """Fail ``call`` when its timeout passes (on the I/O loop); with a timeout longer
        than :data:`NO_CONSUMER_CHECK_AFTER`, check for a consumer at that point first."""
        if call.future.done() or call.timer is not None:
            return
        remaining = call.timeout  # armed right after submission: close enough, never early
        if remaining <= NO_CONSUMER_CHECK_AFTER:
            call.timer = worker.call_later(remaining, lambda: self.expire(cid))
            return

        def check() -> None:
            if self.pending.get(cid) is not call:
                return
            call.timer = worker.call_later(
                remaining - NO_CONSUMER_CHECK_AFTER, lambda: self.expire(cid)
            )
            self.check_consumers(worker, cid, call)

        call.timer = worker.call_later(NO_CONSUMER_CHECK_AFTER, check)

    def check_consumers(self, worker: Transport, cid: str, call: PendingCall) -> None:
        """``call`` has gone unanswered for a while: if its service's queue has no consumer
        and holds at least as many requests as this client waits for from the service, fail
        it with :class:`NoNodeConsumingError` rather than let it wait for its timeout (on the
        I/O loop; one passive declaration, shared by the calls waiting on it)."""
        if self.pending.get(cid) is not call or not call.sent:
            return
        service = call.name.split(".", 1)[0]
        queue = service_queue_name(self.exchange, service)

        def counted(counts: tuple[int, int] | None) -> None:
            if counts is None or counts[0] != 0 or self.pending.get(cid) is not call:
                return  # consumed (the node is slow), gone (returned: unroutable), or done
            # No consumer. Unless the queue still holds as many requests as this client waits
            # for (so none of them can be in a node's hands), some may run on a node that is
            # stopping (it cancelled its consumer and drains): let them wait for it.
            prefix = service + "."
            waiting = sum(1 for c in self.pending.values() if c.sent and c.name.startswith(prefix))
            if counts[1] < waiting:
                return
            self.pop(cid)
            call.future.reject(
                NoNodeConsumingError(
                    f"no node is consuming the queue of {service!r}: the request to "
                    f"{call.name} waits in queue {queue!r}, which exists but has no consumer "
                    f"(its nodes stopped, or are reconnecting). Is a node of service "
                    f"{service!r} running on exchange {self.exchange!r}? The request stays "
                    "queued until its timeout; a node that starts before then runs it"
                )
            )
            worker.wake_driver()

        worker.queue_counts(queue, counted)

    def expire(self, cid: str) -> None:
        """The timer of call ``cid`` fired: fail it with :class:`TimeoutException`."""
        call = self.pending.get(cid)
        if call is not None:
            call.timer = None  # it is firing: nothing to cancel
            self.pop(cid)
            call.future.reject(self.timeout_error(call.name, call.timeout))

    def on_return(
        self, method: pika.spec.Basic.Return, properties: pika.spec.BasicProperties
    ) -> None:
        """The broker returned a request: no queue is bound for its service."""
        cid = properties.correlation_id
        call = self.pending.get(cid) if cid else None
        if call is None:
            return
        worker = self.worker
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
            worker.call_later(_RETRY_DELAY, lambda: self.resubmit(worker, call))
            return
        self.pop(cid)
        service = call.name.split(".", 1)[0]
        call.future.reject(
            ServiceNotFoundError(
                f"no node serves {service!r}: the request to {call.name} could not be routed "
                f"(AMQP {method.reply_code} {method.reply_text}). Is a node of service "
                f"{service!r} running on exchange {self.exchange!r}?"
            )
        )

    def resubmit(self, worker: Transport, call: PendingCall) -> None:
        """Publish ``call``'s request again (after it came back unroutable)."""
        outgoing = call.outgoing
        if outgoing is None or call.future.done():
            return
        try:
            worker.submit(outgoing)
        except ClientClosedError as exc:
            call.future.reject(exc)

    def wait_settled(self, worker: Transport, timeout: float | None) -> bool:
        """Wait until ``worker`` is ready (True), the broker refused it (raises
        :class:`AccessRefusedError`) or ``timeout`` passes (False)."""
        with self.settled:
            self.settled.wait_for(
                lambda: worker.ready.is_set() or self.refused is not None, timeout
            )
        if self.refused is not None:
            raise AccessRefusedError(str(self.refused))
        return worker.ready.is_set()

    def on_ready(self) -> None:
        """The connection is ready: wake the threads in :meth:`wait_settled`."""
        with self.settled:
            self.settled.notify_all()

    def on_refused(self, error: AccessRefusedError) -> None:
        """The broker refused the credentials: fail every pending call at once."""
        self.refused = error
        with self.settled:
            self.settled.notify_all()
        self.fail_pending(error, only_sent=False)

    def on_disconnect(self, error: BaseException) -> None:
        """The connection dropped: calls already published can no longer get their reply."""
        self.fail_pending(error, only_sent=True)
