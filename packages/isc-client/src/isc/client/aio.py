"""isc for asyncio: :class:`AsyncClient`, the :class:`~isc.client.Client` awaited.

``await client.users.get_user(1)`` sends the call and suspends the task until the reply,
never the event loop. The machinery is the ``Client``'s own, shared rather than copied: an
``AsyncClient`` drives a ``Client`` (codecs, the pending-call table, deadlines on the wire,
unroutable calls, reconnects, ``max_message_size``, stats, tracing headers, notification
confirms). What differs is only how a caller waits:

- the request is published from the event loop's thread when the I/O loop is idle (a
  non-blocking write), else by the I/O thread;
- the I/O thread reads the replies and finishes the calls' futures; an asyncio future is
  finished on its own loop, with one ``call_soon_threadsafe`` wake-up per batch of replies
  (every reply read while the loop had not yet run the batch joins it);
- a call's timeout is a timer on the event loop; cancelling the awaiting task (or the future
  of :meth:`AsyncClient.call_async`) takes the call out of the pending table at once.

isc-client still depends on pika only: nothing here needs another package.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
from collections.abc import Coroutine, Sequence
from typing import Any

from isc.core import DEFAULT_EXCHANGE, AbstractCodec, redact_url

from ._calls import NO_CONSUMER_CHECK_AFTER
from ._client import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_PENDING_CALLS,
    Client,
    _check_timeout,
)
from ._connection import AmqpWorker
from ._future import FutureResult
from ._transport import TransportFactory

__all__ = ["AsyncClient", "AsyncMethodProxy", "AsyncServiceProxy"]


class _AioCall(FutureResult):
    """A call's :class:`FutureResult` that also finishes an asyncio future on its loop."""

    #: The asyncio future the caller awaits (set right after the call is sent).
    aio: asyncio.Future[Any]
    #: The event loop's timer that fails the call when its timeout passes.
    timer: asyncio.TimerHandle | None = None


class _LoopDispatch:
    """Finishes asyncio futures on their event loop, one wake-up per batch.

    :meth:`finished` runs wherever a call ends (the I/O thread, mostly); it queues the call
    and, unless a run of :meth:`drain` is already due, schedules one. ``drain`` clears that
    flag before it empties the queue, so a call queued while it runs is either drained now or
    schedules the next run: none is left behind.
    """

    __slots__ = ("done", "loop", "scheduled", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.done: collections.deque[_AioCall] = collections.deque()
        self.scheduled = False
        self.thread: int | None = threading.get_ident()

    def finished(self, future: Any) -> None:
        """``future`` (an :class:`_AioCall`) is done: finish its asyncio future soon."""
        self.done.append(future)
        if self.scheduled:
            return
        self.scheduled = True
        try:
            if threading.get_ident() == self.thread:
                self.loop.call_soon(self.drain)
            else:
                self.loop.call_soon_threadsafe(self.drain)
        except RuntimeError:  # the loop was closed: nobody awaits these calls any more
            self.done.clear()

    def drain(self) -> None:
        """On the loop: copy each finished call's outcome to its asyncio future."""
        self.scheduled = False
        done = self.done
        while done:
            call = done.popleft()
            timer = call.timer
            if timer is not None:
                call.timer = None
                timer.cancel()
            aio = call.aio
            if aio.done():  # cancelled by its caller
                continue
            if call.cancelled():
                aio.cancel()
                continue
            error = call.exception(0)
            if error is None:
                aio.set_result(call.result(0))
            else:
                aio.set_exception(error)


class AsyncClient:
    """A connection to the isc services for asyncio applications (FastAPI, aiohttp, ...).

    The same surface as :class:`~isc.client.Client`, awaited::

        async with AsyncClient("amqp://guest:guest@127.0.0.1:5672/") as client:
            user = await client.users.get_user(1)
            user = await client.invoke("users", "get_user", 1)
            user = await client.users.get_user.with_timeout(2)(1)
            a, b = await asyncio.gather(client.users.get_user(1), client.users.get_user(2))
            await client.notify("user_seen", 1)

    Calls never block the event loop: a task awaiting a reply lets every other task run.
    Cancelling it (``task.cancel()``, ``asyncio.wait_for``) ends the call at once and takes it
    out of the pending calls; a late reply is dropped and counted in :attr:`stats`.

    It runs on a :class:`~isc.client.Client` (:attr:`client`), so the rules are the same:
    codecs, deadlines on the wire, :class:`~isc.core.ServiceNotFoundError`,
    :class:`~isc.core.ConnectionLostError` for calls whose connection dropped, reconnecting
    with backoff, ``max_message_size``, notification confirms and their buffer. The
    parameters are ``Client``'s; :meth:`wrap` makes one over an existing ``Client`` (to
    share its connection with threaded code, or over a
    :class:`~isc.client.testing.FakeClient` in tests).

    An ``AsyncClient`` may be used from any event loop (one at a time is the usual case);
    each call's future belongs to the loop it was made on.
    """

    _client: Client

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
        self._bind(
            Client(
                host,
                exchange,
                codec,
                connect_timeout,
                reconnect_timeout,
                invoke_timeout,
                url=url,
                max_message_size=max_message_size,
                max_buffered_notifications=max_buffered_notifications,
                max_pending_calls=max_pending_calls,
                fastpath=fastpath,
                transport=transport,
            )
        )

    @classmethod
    def wrap(cls, client: Client) -> AsyncClient:
        """An ``AsyncClient`` over ``client``: both share its connection and pending calls.

        Stopping either stops both.
        """
        if not isinstance(client, Client):
            raise TypeError(f"AsyncClient.wrap() takes an isc Client, got {client!r}")
        self = cls.__new__(cls)
        self._bind(client)
        return self

    def _bind(self, client: Client) -> None:
        self._client = client
        #: The dispatch of the loop the last call was made on (a call keeps its own).
        self._dispatch: _LoopDispatch | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The :class:`~isc.client.Client` this one runs on (for threaded code)."""
        return self._client

    async def start(self) -> AsyncClient:
        """Connect in the background (calls made before the connection is up wait for it)."""
        self._client.start()
        return self

    async def stop(self, timeout: float = 5.0) -> None:
        """Close the connection; pending calls fail with :class:`~isc.core.ClientClosedError`.

        Notifications not yet confirmed by the broker get up to ``timeout`` seconds to be
        confirmed first. The waiting happens on a worker thread, not on the event loop.
        """
        await asyncio.get_running_loop().run_in_executor(None, self._client.stop, timeout)

    async def __aenter__(self) -> AsyncClient:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Start if needed and wait until the connection is ready; return whether it is.

        Raises :class:`~isc.core.AccessRefusedError` as soon as the broker refuses the
        credentials.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._client.wait_connected, timeout)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until the broker confirmed every notification sent so far; return whether it
        did (see :meth:`Client.flush <isc.client.Client.flush>`)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._client.flush, timeout)

    @property
    def pending_calls(self) -> int:
        """How many calls are waiting for their reply."""
        return self._client.pending_calls

    @property
    def stats(self) -> dict[str, int]:
        """Counters of what this client dropped or sent twice (as ``Client.stats``)."""
        return self._client.stats

    @property
    def is_connected(self) -> bool:
        """True while the connection and the reply queue are up."""
        return self._client.is_connected

    # -- settings ----------------------------------------------------------------------------

    @property
    def codec(self) -> AbstractCodec:
        """The codec used for new calls and notifications."""
        return self._client.codec

    def set_codec(self, codec: AbstractCodec | type[AbstractCodec]) -> None:
        """Use ``codec`` for the calls and notifications made from now on."""
        self._client.set_codec(codec)

    def force_json(self) -> None:
        """Use the plain :class:`~isc.core.JSONCodec` from now on."""
        self._client.force_json()

    def set_invoke_timeout(self, timeout: float) -> None:
        """Set how many seconds calls wait for their reply by default."""
        self._client.set_invoke_timeout(timeout)

    # -- calls -------------------------------------------------------------------------------

    async def invoke(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``service.method(*args, **kwargs)`` and return its result.

        Raises :class:`~isc.core.RemoteException` when the remote method fails (or does not
        exist), :class:`~isc.core.TimeoutException` when no reply arrives within the invoke
        timeout.
        """
        return await self.call(service, method, args, kwargs)

    def invoke_async(
        self, service: str, method: str, *args: Any, **kwargs: Any
    ) -> asyncio.Future[Any]:
        """Send the call at once and return its future (see :meth:`call_async`)."""
        return self.call_async(service, method, args, kwargs)

    async def call(
        self,
        service: str,
        method: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Like :meth:`invoke`, with explicit arguments and a per-call ``timeout``."""
        call = self._send(service, method, args, kwargs, timeout)
        try:
            return await call.aio
        except asyncio.CancelledError:
            call.cancel()  # out of the pending calls now; a late reply is dropped
            raise

    def call_async(
        self,
        service: str,
        method: str,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> asyncio.Future[Any]:
        """Send the call at once and return an :class:`asyncio.Future` of its result.

        Await it, gather it, or cancel it (which ends the call). Must be called with an event
        loop running; the future belongs to that loop.
        """
        call = self._send(service, method, args, kwargs, timeout)
        call.aio.add_done_callback(functools.partial(_cancel_call, call))
        return call.aio

    def _send(
        self,
        service: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        timeout: float | None,
    ) -> _AioCall:
        loop = asyncio.get_running_loop()
        dispatch = self._dispatch
        if dispatch is None or dispatch.loop is not loop:
            dispatch = self._dispatch = _LoopDispatch(loop)
        client = self._client
        seconds = client._invoke_timeout if timeout is None else _check_timeout(timeout)
        call: Any = client._send(
            service, method, args, kwargs, seconds, timer=False, future_type=_AioCall
        )
        call.aio = loop.create_future()
        if seconds > NO_CONSUMER_CHECK_AFTER:  # first: is anybody consuming? (as Client's)
            call.timer = loop.call_later(
                NO_CONSUMER_CHECK_AFTER, self._check_consumers, call, seconds
            )
        else:
            call.timer = loop.call_later(seconds, self._expire, call, seconds)
        call._add_internal_callback(dispatch.finished)
        return call  # type: ignore[no-any-return]

    def _check_consumers(self, call: _AioCall, timeout: float) -> None:
        """On the loop: ``call`` is unanswered after ``NO_CONSUMER_CHECK_AFTER`` seconds: arm
        its timeout for the rest, and have the client check that a node consumes its queue
        (it fails with ``NoNodeConsumingError`` if none does)."""
        loop = asyncio.get_running_loop()
        call.timer = loop.call_later(timeout - NO_CONSUMER_CHECK_AFTER, self._expire, call, timeout)
        worker = self._client._calls.worker
        if worker is not None and not call.done():
            self._client._check_consumers(worker, call)

    def _expire(self, call: _AioCall, timeout: float) -> None:
        """On the loop: ``call``'s timeout passed without a reply."""
        call.timer = None
        call.reject(self._client._calls.timeout_error(call.cannonical_name, timeout))

    async def notify(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Broadcast ``event`` with arguments to every node listening for it.

        As :meth:`Client.notify <isc.client.Client.notify>`: the notification waits in a
        bounded buffer until the broker confirms it (:meth:`flush` waits for that), and
        :class:`~isc.core.BufferFullError` is raised when the buffer is full.
        """
        self._client.notify(event, *args, **kwargs)

    def __getattr__(self, name: str) -> AsyncServiceProxy:
        if name.startswith("_"):
            raise AttributeError(name)
        return AsyncServiceProxy(self, name)

    def __repr__(self) -> str:
        client = self._client
        state = "connected" if client.is_connected else "not connected"
        return f"<isc AsyncClient {redact_url(client._url)} exchange={client._exchange!r} {state}>"


def _cancel_call(call: _AioCall, aio: asyncio.Future[Any]) -> None:
    """The future of :meth:`AsyncClient.call_async` is done: end the call if it was cancelled."""
    if aio.cancelled():
        call.cancel()


class AsyncServiceProxy:
    """``client.<service>``: attribute access yields an :class:`AsyncMethodProxy`."""

    def __init__(self, client: AsyncClient, service_name: str) -> None:
        self._client = client
        self._service_name = service_name

    def __getattr__(self, name: str) -> AsyncMethodProxy:
        if name.startswith("__"):
            raise AttributeError(name)
        return AsyncMethodProxy(self._client, self._service_name, name)

    def __repr__(self) -> str:
        return f"<AsyncServiceProxy {self._service_name}>"


class AsyncMethodProxy:
    """``client.<service>.<method>``: call it and await the result."""

    def __init__(
        self,
        client: AsyncClient,
        service_name: str,
        method_name: str,
        timeout: float | None = None,
    ) -> None:
        self._client = client
        self._service_name = service_name
        self._method_name = method_name
        self._timeout = None if timeout is None else _check_timeout(timeout)

    def __call__(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        """Invoke the remote method: a coroutine of its result (sent when awaited)."""
        return self._client.call(
            self._service_name, self._method_name, args, kwargs, timeout=self._timeout
        )

    def call_async(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Send the call at once; returns an :class:`asyncio.Future` of its result."""
        return self._client.call_async(
            self._service_name, self._method_name, args, kwargs, timeout=self._timeout
        )

    def with_timeout(self, timeout: float) -> AsyncMethodProxy:
        """This method with its own timeout: ``await client.users.get_user.with_timeout(2)(1)``."""
        return AsyncMethodProxy(self._client, self._service_name, self._method_name, timeout)

    def __repr__(self) -> str:
        return f"<AsyncMethodProxy {self._service_name}.{self._method_name}>"
