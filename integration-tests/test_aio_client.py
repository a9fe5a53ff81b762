"""isc.client.aio.AsyncClient against a real broker, served by a plain-pika reference service.

A broker restart is in test_aio_faults.py (with the fault suite); the isclib 1.2 node in
test_isclib12_interop.py; the chapters' programs in asyncio form in test_examples.py.
"""

from __future__ import annotations

import asyncio
import runpy
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isc.client import ConnectionLostError, RemoteException, ServiceNotFoundError, TimeoutException
from isc.client.aio import AsyncClient
from isc.core import AbstractCodec
from isc_testing import TcpProxy
from isc_testing.nodes import NodeProcess, service_answers
from isc_testing.raw_service import RawService

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.fixture
def service(amqp_url: str, exchange: str) -> Iterator[RawService]:
    with RawService(amqp_url, exchange, "calc") as svc:
        yield svc


def test_calls_errors_and_notifications_awaited(
    amqp_url: str, exchange: str, codec: AbstractCodec, service: RawService
) -> None:
    async def main() -> AsyncClient:
        async with AsyncClient(amqp_url, exchange=exchange, codec=codec) as client:
            assert await client.calc.add(2, 3) == 5
            assert await client.invoke("calc", "add", 40, 2) == 42
            assert await client.calc.add.with_timeout(5)("x", "y") == "xy"
            future = client.calc.add.call_async(20, 22)
            assert isinstance(future, asyncio.Future)
            assert await asyncio.gather(future, client.calc.add(1, 2)) == [42, 3]
            with pytest.raises(RemoteException, match="boom") as raised:
                await client.calc.fail("boom")
            assert raised.value.remote_type == "ValueError"
            with pytest.raises(ServiceNotFoundError, match="no node serves 'nobody'"):
                await client.nobody.ping()
            with pytest.raises(TimeoutException, match=r"no reply from calc.sleep within 0.05s"):
                await client.calc.sleep.with_timeout(0.05)(0.2)
            assert client.pending_calls == 0
            # The service answers in order: the late reply came first, and was dropped.
            assert await client.calc.add(1, 1) == 2
            assert client.stats["dropped_replies"] == 1
            await client.notify("boom", {"foo": "bar"})
            assert await client.flush(5)
            assert client.is_connected
        return client

    client = asyncio.run(main())
    assert not client.is_connected
    # What the service received was encoded with the codec under test, deadline included.
    request = service.requests[0]
    assert (request.method, list(request.args)) == ("add", [2, 3])
    assert request.deadline is not None


@pytest.mark.codec_independent
def test_a_ticker_keeps_ticking_during_a_thousand_concurrent_calls(
    amqp_url: str, exchange: str, service: RawService
) -> None:
    async def main() -> int:
        ticks_while_pending = 0
        finished = False
        async with AsyncClient(amqp_url, exchange=exchange) as client:
            assert await client.wait_connected(10)

            async def ticker() -> None:
                nonlocal ticks_while_pending
                while not finished:
                    if client.pending_calls:
                        ticks_while_pending += 1
                    await asyncio.sleep(0.001)  # a busy spin would starve the I/O thread

            ticking = asyncio.ensure_future(ticker())
            results = await asyncio.gather(*(client.calc.add(i, 1) for i in range(1000)))
            finished = True
            await ticking
            assert results == [i + 1 for i in range(1000)]
            assert client.pending_calls == 0
        return ticks_while_pending

    # A client that blocked the loop until its reply would leave the ticker no turn at all
    # while calls are pending (0); here it ticks all along.
    assert asyncio.run(main()) >= 10


@pytest.mark.codec_independent
def test_a_cancelled_call_leaves_the_table_and_its_late_reply_is_dropped(
    amqp_url: str, exchange: str, service: RawService
) -> None:
    async def main() -> AsyncClient:
        async with AsyncClient(amqp_url, exchange=exchange) as client:
            task = asyncio.ensure_future(client.calc.sleep(0.2))
            while not service.requests:  # the service has the request
                await asyncio.sleep(0.005)
            assert client.pending_calls == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.pending_calls == 0
            assert await client.calc.add(1, 1) == 2  # answered after the cancelled one
            assert client.stats["dropped_replies"] == 1
        return client

    asyncio.run(main())


@pytest.mark.codec_independent
def test_a_cut_connection_fails_pending_calls_at_once_then_recovers(
    tcp_proxy: TcpProxy, amqp_url: str, exchange: str, service: RawService
) -> None:
    assert tcp_proxy.url is not None

    async def main() -> float:
        async with AsyncClient(tcp_proxy.url, exchange=exchange, invoke_timeout=30) as client:
            connecting = time.monotonic()
            assert await client.wait_connected(10)
            assert time.monotonic() - connecting < 2  # once connected, not at its timeout
            future = client.calc.sleep.call_async(0.5)
            while not service.requests:  # the service is running it
                await asyncio.sleep(0.005)
            started = time.monotonic()
            tcp_proxy.cut()
            with pytest.raises(ConnectionLostError, match=r"calc\.sleep"):
                await future
            failed_after = time.monotonic() - started
            assert client.pending_calls == 0
            assert await client.calc.add(1, 2) == 3  # reconnected by itself
            return failed_after

    assert asyncio.run(main()) < 5  # at once: not its 30 s timeout


@pytest.mark.codec_independent
def test_the_asyncio_pages_fastapi_app(
    amqp_url: str, exchange: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    monkeypatch.setenv("ISC_URL", amqp_url)
    monkeypatch.setenv("ISC_EXCHANGE", exchange)
    users = NodeProcess(
        [sys.executable, str(EXAMPLES / "chapter3" / "users_service.py")],
        ready_probe=service_answers(amqp_url, exchange, "users"),
    )
    namespace = runpy.run_path(str(EXAMPLES / "asyncio" / "fastapi_app.py"))
    app, isc = namespace["app"], namespace["isc"]

    async def main() -> None:
        async with app.router.lifespan_context(app):  # as the ASGI server runs it
            assert isc.is_connected or await isc.wait_connected(10)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                one, two, three = await asyncio.gather(
                    http.get("/users/1"), http.get("/users/2"), http.get("/users/3")
                )
        assert one.json() == {"id": 1, "name": "Andrew"}
        assert two.json() == {"id": 2, "name": "Victoria"}
        assert (three.status_code, three.json()) == (404, {"detail": "no user 3"})

    with users:
        asyncio.run(main())
        assert not isc.is_connected  # stopped with the app
