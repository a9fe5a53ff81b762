"""isc.client.aio.AsyncClient over the in-memory broker: the pure logic of awaiting calls.

The calls run through the real Client machinery (pending-call table, reply decoding,
unroutable requests) over :mod:`isc.client.testing.memory`; what is tested here is how an
asyncio caller waits, times out, cancels and is never blocked. The integration suite proves
the same against RabbitMQ.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from isc.client import (
    Client,
    ClientClosedError,
    MessageTooLargeError,
    NoNodeConsumingError,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
)
from isc.client.aio import AsyncClient, _AioCall, _LoopDispatch
from isc.client.internal import AmqpChannel
from isc.client.testing import FakeClient
from isc.client.testing.memory import MemoryBroker
from isc.core import ConfigurationError, JSONCodec, fanout_exchange_name


@pytest.fixture
def fake() -> Iterator[FakeClient]:
    client = FakeClient(codec=JSONCodec())
    client.answer("users", "get_user", lambda user_id: {"id": user_id})
    client.answer("users", "fail", lambda: 1 / 0)
    yield client
    client.stop()


@pytest.fixture
def silent() -> Iterator[MemoryBroker]:
    """A broker where service ``calc`` has a queue but never answers."""
    broker = MemoryBroker()

    def setup(channel: AmqpChannel, ready: Callable[[], None]) -> None:
        channel.exchange_declare("x", exchange_type="direct")
        channel.exchange_declare(fanout_exchange_name("x"), exchange_type="fanout")
        channel.queue_declare("x_service_calc")
        channel.queue_bind("x_service_calc", "x", routing_key="x_service_calc")
        ready()

    peer = broker.transport(
        "memory://",
        "x",
        connect_timeout=1,
        reconnect_timeout=0.05,
        setup=setup,
        on_return=lambda method, properties: None,
        on_disconnect=lambda error: None,
    )
    peer.start()
    yield broker
    peer.stop()
    broker.close()


def run(main: Callable[[], Any]) -> Any:
    return asyncio.run(main())


def test_the_client_surface_awaited(fake: FakeClient) -> None:
    async def main() -> None:
        async with AsyncClient.wrap(fake) as client:
            assert await client.users.get_user(1) == {"id": 1}
            assert await client.invoke("users", "get_user", 2) == {"id": 2}
            assert await client.call("users", "get_user", (3,)) == {"id": 3}
            assert await client.users.get_user.with_timeout(2)(4) == {"id": 4}
            future = client.users.get_user.call_async(5)
            assert isinstance(future, asyncio.Future)
            other = client.invoke_async("users", "get_user", 6)
            assert await asyncio.gather(future, other) == [{"id": 5}, {"id": 6}]
            with pytest.raises(RemoteException, match="division by zero"):
                await client.users.fail()
            with pytest.raises(ServiceNotFoundError, match="no node serves 'nobody'"):
                await client.nobody.ping()
            await client.notify("user_seen", 1, at="now")
            assert await client.flush(1)
            assert client.pending_calls == 0
            assert client.client is fake
            assert client.codec is fake.codec

    run(main)
    assert [call.args for call in fake.calls_to("users", "get_user")] == [
        (1,),
        (2,),
        (3,),
        (4,),
        (5,),
        (6,),
    ]
    assert [(n.event, n.args, n.kwargs) for n in fake.notifications] == [
        ("user_seen", (1,), {"at": "now"})
    ]


def test_a_call_times_out_on_the_event_loop(silent: MemoryBroker) -> None:
    async def main() -> None:
        async with AsyncClient(exchange="x", transport=silent.transport) as client:
            with pytest.raises(TimeoutException, match=r"no reply from calc.add within 0.05s"):
                await client.calc.add.with_timeout(0.05)(1, 2)
            client.set_invoke_timeout(0.05)
            with pytest.raises(TimeoutException, match=r"within 0.05s"):
                await client.calc.add.call_async(1, 2)
            assert client.pending_calls == 0

    run(main)


def test_cancelling_the_awaiting_task_removes_the_pending_call(silent: MemoryBroker) -> None:
    async def main() -> None:
        async with AsyncClient(exchange="x", transport=silent.transport) as client:
            task = asyncio.ensure_future(client.calc.add(1, 2))
            while client.pending_calls == 0:
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.pending_calls == 0

            future = client.calc.add.call_async(1, 2)
            assert client.pending_calls == 1
            future.cancel()
            await asyncio.sleep(0)  # done-callbacks run on the loop's next pass
            assert client.pending_calls == 0

            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.calc.add(1, 2), 0.01)
            assert client.pending_calls == 0

    run(main)


def test_stop_fails_pending_calls_and_refuses_new_ones(silent: MemoryBroker) -> None:
    async def main() -> None:
        client = await AsyncClient(exchange="x", transport=silent.transport).start()
        future = client.calc.add.call_async(1, 2)
        await client.stop()
        with pytest.raises(ClientClosedError, match=r"calc\.add"):
            await future
        with pytest.raises(ClientClosedError):
            await client.calc.add(1, 2)

    run(main)


def test_a_client_serves_one_loop_after_another(fake: FakeClient) -> None:
    client = AsyncClient.wrap(fake)

    async def main() -> Any:
        return await client.users.get_user(7)

    assert run(main) == {"id": 7}
    assert run(main) == {"id": 7}  # a new event loop: its own futures


def test_bad_arguments_are_refused_clearly(fake: FakeClient) -> None:
    with pytest.raises(TypeError, match="takes an isc Client"):
        AsyncClient.wrap("amqp://")  # type: ignore[arg-type]
    client = AsyncClient.wrap(fake)
    with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
        client.users.get_user.with_timeout(0)
    with pytest.raises(RuntimeError, match="no running event loop"):
        client.users.get_user.call_async(1)
    assert "AsyncClient" in repr(client)
    assert isinstance(AsyncClient(exchange="x", transport=MemoryBroker().transport).client, Client)


def test_replies_finished_together_wake_the_loop_once() -> None:
    loop = asyncio.new_event_loop()
    try:
        dispatch = _LoopDispatch(loop)
        wakeups: list[object] = []
        threadsafe = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any) -> Any:
            wakeups.append(callback)
            return threadsafe(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        calls = []
        for i in range(100):
            call = _AioCall(f"calc.add{i}", correlation_id=str(i))
            call.aio = loop.create_future()
            call._add_internal_callback(dispatch.finished)
            calls.append(call)

        def io_thread() -> None:  # replies read in one batch, as the I/O thread reads them
            for i, call in enumerate(calls):
                call.resolve(i)

        reader = threading.Thread(target=io_thread)
        reader.start()
        reader.join()
        assert len(wakeups) == 1  # one wake-up for the batch, not one per reply
        results = loop.run_until_complete(asyncio.gather(*(call.aio for call in calls)))
        assert results == list(range(100))
        late = _AioCall("calc.late", correlation_id="late")
        late.aio = loop.create_future()
        late._add_internal_callback(dispatch.finished)
        reader = threading.Thread(target=lambda: late.reject(TimeoutException("late")))
        reader.start()
        reader.join()
        assert len(wakeups) == 2
        with pytest.raises(TimeoutException, match="late"):
            loop.run_until_complete(late.aio)
    finally:
        loop.close()


def test_the_clients_limits_apply_as_they_are() -> None:
    fake = FakeClient(max_message_size=1000)
    fake.answer("users", "echo", lambda text: text)

    async def main() -> None:
        client = AsyncClient.wrap(fake)
        assert await client.users.echo("x" * 100) == "x" * 100
        with pytest.raises(MessageTooLargeError, match="over this client's max_message_size"):
            await client.users.echo("x" * 2000)
        with pytest.raises(MessageTooLargeError):
            await client.notify("big", "x" * 2000)
        assert client.pending_calls == 0

    try:
        run(main)
    finally:
        fake.stop()


def test_calls_left_on_a_closed_loop_end_quietly_when_the_client_stops(
    silent: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    client = AsyncClient(exchange="x", transport=silent.transport)

    async def main() -> asyncio.Future[Any]:
        return client.calc.add.call_async(1, 2)  # never awaited

    future = run(main)  # asyncio.run closes its loop with the call pending
    assert client.pending_calls == 1
    client.client.stop()  # fails the call on this thread, the closed loop's own
    assert client.pending_calls == 0
    assert not future.done()  # its loop is gone: nobody can await it
    assert "exception calling callback" not in caplog.text


def test_a_call_nobody_consumes_fails_within_a_second(silent: MemoryBroker) -> None:
    async def main() -> None:
        async with AsyncClient(exchange="x", transport=silent.transport) as client:
            started = time.monotonic()
            with pytest.raises(NoNodeConsumingError, match="no node is consuming"):
                await client.calc.add.with_timeout(20)(1, 2)
            assert time.monotonic() - started < 1.5
            assert client.pending_calls == 0

    run(main)
