"""isc.client against a real broker, served by a plain-pika reference service."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import pika
import pytest

from isc.client import (
    Client,
    ClientClosedError,
    ConnectionLostError,
    FutureResult,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
)
from isc.core import AbstractCodec, EncodeError, Notification, fanout_exchange_name
from isc.core.protocol import Envelope
from isc_testing import TcpProxy, wait_for
from isc_testing.raw_service import RawService


@pytest.fixture
def service(amqp_url: str, exchange: str) -> Iterator[RawService]:
    with RawService(amqp_url, exchange, "calc") as svc:
        yield svc


@pytest.fixture
def client(amqp_url: str, exchange: str, codec: AbstractCodec) -> Iterator[Client]:
    c = Client(amqp_url, exchange=exchange, codec=codec, invoke_timeout=10)
    yield c
    c.stop()


def listify(value: object) -> object:
    """JSON-family codecs return tuples as lists."""
    if isinstance(value, (list, tuple)):
        return [listify(v) for v in value]
    return value


def test_calls_without_start_connect_on_first_use(client: Client, service: RawService) -> None:
    assert not client.is_connected
    assert client.calc.add(2, 3) == 5
    assert client.invoke("calc", "add", 40, 2) == 42
    assert client.is_connected


def test_arguments_and_keyword_arguments_arrive(client: Client, service: RawService) -> None:
    result = client.calc.echo(1, "two", [3], timeout=4, flag=True)
    # `timeout` here is the remote method's own keyword argument, passed through untouched.
    assert listify(result) == [[1, "two", [3]], {"timeout": 4, "flag": True}]


def test_call_async_returns_a_concurrent_future(client: Client, service: RawService) -> None:
    future = client.calc.add.call_async(1, 2)
    assert isinstance(future, FutureResult)
    assert future.wait(10)
    assert future.is_ready()
    assert future.result() == 3
    assert future.value == 3
    assert future.cannonical_name == "calc.add"
    other = client.invoke_async("calc", "add", 5, 5)
    seen: list[int] = []
    done = threading.Event()
    other.add_done_callback(lambda f: (seen.append(f.result()), done.set()))
    assert done.wait(10)
    assert seen == [10]


def test_futures_work_with_asyncio(client: Client, service: RawService) -> None:
    async def main() -> object:
        return await asyncio.wrap_future(client.calc.add.call_async(20, 22))

    assert asyncio.run(main()) == 42


def test_remote_exception_carries_message_and_type(client: Client, service: RawService) -> None:
    with pytest.raises(RemoteException) as info:
        client.calc.fail("nope")
    assert str(info.value) == "nope"
    assert info.value.remote_type == "ValueError"
    with pytest.raises(RemoteException, match="'missing'"):
        client.calc.missing()  # the raw service raises KeyError for unknown methods


def test_a_service_nobody_runs_fails_fast(client: Client, service: RawService) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceNotFoundError, match="no node serves 'nobody'"):
        client.nobody.anything()
    assert time.monotonic() - started < 5  # the timeout is 10 s: failed by basic.return
    assert client.pending_calls == 0


def test_timeout_raises_and_forgets_the_call(client: Client, service: RawService) -> None:
    # Connected first: on a busy machine connecting can take longer than the 0.5 s timeout,
    # and a call whose deadline passes before it is published is never sent at all.
    assert client.calc.add(0, 0) == 0
    started = time.monotonic()
    with pytest.raises(TimeoutException, match=r"no reply from calc.sleep within 0.5s"):
        client.calc.sleep.with_timeout(0.5)(1.5)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.0
    assert client.pending_calls == 0
    # The late reply arrives and is dropped; the client keeps working.
    assert client.calc.add(1, 1) == 2
    wait_for(lambda: len(service.requests) == 3, timeout=5, message="the three requests served")
    assert [r.method for r in service.requests] == ["add", "sleep", "add"]


def test_call_with_explicit_arguments_and_timeout(client: Client, service: RawService) -> None:
    assert client.call("calc", "add", (1, 2)) == 3
    assert listify(client.call("calc", "echo", kwargs={"timeout": 1}, timeout=5)) == [
        [],
        {"timeout": 1},
    ]
    with pytest.raises(TimeoutException):
        client.call("calc", "sleep", (1,), timeout=0.2)


def test_requests_carry_a_deadline(client: Client, service: RawService) -> None:
    before = time.time()
    client.calc.add.with_timeout(7)(1, 2)
    deadline = service.requests[-1].deadline
    assert deadline is not None
    assert before + 6 < deadline < time.time() + 7.5


def test_an_unencodable_argument_fails_before_anything_is_sent(client: Client) -> None:
    with pytest.raises(EncodeError):
        client.calc.echo(lambda: None)  # no codec can encode a function
    assert client.pending_calls == 0


@pytest.mark.codec_independent
def test_wait_connected_returns_once_connected_not_at_its_timeout(
    amqp_url: str, exchange: str
) -> None:
    # It used to be woken only before the confirm channel opened, so it always slept its
    # whole timeout (wait_connected(60) took 60 s against a broker that answered at once).
    outcome: list[bool] = []
    with Client(amqp_url, exchange=exchange) as client:
        waiter = threading.Thread(target=lambda: outcome.append(client.wait_connected(120)))
        waiter.start()
        waiter.join(30)
        assert not waiter.is_alive(), "wait_connected(120) still waiting 30 s after the start"
        assert outcome == [True]
        assert client.is_connected


def test_notify_reaches_every_queue_bound_to_the_fanout(
    client: Client, amqp_url: str, exchange: str, codec: AbstractCodec
) -> None:
    client.wait_connected(10)  # the client declares the fanout exchange
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        queues = []
        for _ in range(2):
            queue = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(queue, fanout_exchange_name(exchange))
            queues.append(queue)
        client.notify("new_message", "alice", "Hello!")
        client.notify("boom", {"foo": "bar"})
        for queue in queues:
            got = []
            for _ in range(2):
                _method, props, body = wait_for(
                    lambda q=queue: (lambda r: r if r[0] else None)(channel.basic_get(q, True)),
                    timeout=5,
                    message=f"a notification on {queue}",
                )
                envelope = Envelope(body, props.content_type, correlation_id=props.correlation_id)
                assert props.correlation_id  # isclib 1.x nodes drop notifications without one
                assert props.delivery_mode == 2  # persistent: durable queues keep it (restarts)
                got.append(Notification.decode(envelope, codec))
            assert [(n.event, listify(n.args)) for n in got] == [
                ("new_message", ["alice", "Hello!"]),
                ("boom", [{"foo": "bar"}]),
            ]
    finally:
        connection.close()


@pytest.mark.codec_independent
def test_thread_safety_every_reply_reaches_its_own_caller(
    amqp_url: str, exchange: str, service: RawService
) -> None:
    threads, calls = 32, 500
    mismatches: list[str] = []
    errors: list[BaseException] = []
    with Client(amqp_url, exchange=exchange, invoke_timeout=60) as client:

        def caller(index: int) -> None:
            try:
                for n in range(calls):
                    token = f"{index}-{n}-{uuid.uuid4().hex[:6]}"
                    got = client.calc.add(token, "!")
                    if got != token + "!":
                        mismatches.append(f"{token} got {got}")
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert not errors, errors[:3]
        assert not mismatches, mismatches[:5]
        assert len(service.requests) == threads * calls
        assert client.pending_calls == 0


def test_stop_fails_pending_calls_and_refuses_new_ones(client: Client, service: RawService) -> None:
    future = client.calc.sleep.call_async(2)
    wait_for(lambda: service.requests, timeout=5, message="the call reached the service")
    client.stop()
    with pytest.raises(ClientClosedError):
        future.result(5)
    with pytest.raises(ClientClosedError):
        client.calc.add(1, 2)
    assert client.pending_calls == 0


def test_unreachable_broker_times_out_with_a_clear_message(exchange: str) -> None:
    url = "amqp://guest:secret@127.0.0.1:1/"  # nothing listens on port 1
    with Client(url, exchange=exchange, invoke_timeout=1, connect_timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(TimeoutException) as info:
            client.calc.add(1, 2)
        assert time.monotonic() - started < 1.6
    message = str(info.value)
    assert "not connected to amqp://guest:***@127.0.0.1:1/" in message
    assert "secret" not in message


@pytest.mark.codec_independent
def test_a_cut_connection_fails_the_pending_call_promptly_and_reconnects(
    amqp_url: str, exchange: str, service: RawService, tcp_proxy: TcpProxy
) -> None:
    assert tcp_proxy.url is not None
    with Client(tcp_proxy.url, exchange=exchange, invoke_timeout=20) as client:
        assert client.calc.add(1, 2) == 3
        future = client.calc.sleep.call_async(1)
        wait_for(lambda: len(service.requests) == 2, timeout=5, message="the slow call arrived")
        started = time.monotonic()
        tcp_proxy.cut()
        with pytest.raises(ConnectionLostError, match=r"calc\.sleep"):
            future.result(10)
        assert time.monotonic() - started < 3  # not the 20 s timeout
        assert client.pending_calls == 0
        wait_for(lambda: client.is_connected, timeout=10, message="the client reconnected")
        assert client.calc.add(2, 2) == 4
