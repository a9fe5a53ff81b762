"""Client pieces that need no broker: futures, proxies, settings and argument checks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import pytest

from isc.client import (
    Client,
    ClientClosedError,
    FutureResult,
    JSONCodec,
    MethodProxy,
    PickleCodec,
    RemoteException,
    ServiceProxy,
    TimeoutException,
    TypedJSONCodec,
)
from isc.core import ConfigurationError, EncodeError, Reply

# A port nothing listens on: these tests never reach a broker.
NOWHERE = "amqp://guest:guest@127.0.0.1:1/"


class TestFutureResult:
    def test_resolve_once(self) -> None:
        future = FutureResult("svc.m")
        assert not future.is_ready()
        assert future.value is None
        future.resolve(1)
        future.resolve(2)  # ignored: already resolved
        future.reject(RuntimeError("late"))  # ignored too
        assert future.is_ready()
        assert future.result() == 1
        assert future.value == 1
        assert future.exception() is None

    def test_reject(self) -> None:
        future = FutureResult("svc.m")
        future.reject(RemoteException("boom"))
        assert future.wait(0)
        assert isinstance(future.exception(), RemoteException)
        assert future.value is None
        with pytest.raises(RemoteException, match="boom"):
            future.result()

    def test_wait_times_out_and_a_late_resolve_still_works(self) -> None:
        future = FutureResult("svc.m")
        assert future.wait(0.01) is False
        threading.Timer(0.05, future.resolve, args=("late",)).start()
        assert future.wait(5) is True
        assert future.result() == "late"

    def test_done_callbacks_and_asyncio(self) -> None:
        future = FutureResult("svc.m", correlation_id="c")
        seen: list[object] = []
        future.add_done_callback(lambda f: seen.append(f.result()))

        async def main() -> object:
            wrapped = asyncio.wrap_future(future)
            asyncio.get_running_loop().call_later(0.01, future.resolve, 7)
            return await wrapped

        assert asyncio.run(main()) == 7
        assert seen == [7]
        assert future.extra == {"correlation_id": "c"}

    def test_is_a_concurrent_future(self) -> None:
        future = FutureResult()
        assert isinstance(future, concurrent.futures.Future)
        assert "pending" in repr(future)


class TestClientWithoutBroker:
    def test_construction_does_not_connect(self) -> None:
        client = Client(NOWHERE)
        assert not client.is_connected
        assert client.pending_calls == 0
        assert "not connected" in repr(client)
        client.stop()

    def test_default_codec_is_typed_json(self) -> None:
        assert isinstance(Client(NOWHERE).codec, TypedJSONCodec)

    def test_set_codec_accepts_instances_and_classes(self) -> None:
        client = Client(NOWHERE, codec=PickleCodec)
        assert isinstance(client.codec, PickleCodec)
        client.force_json()
        assert isinstance(client.codec, JSONCodec)
        with pytest.raises(ConfigurationError, match="AbstractCodec"):
            client.set_codec("json")  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [0, -1, "5", None, True])
    def test_bad_timeouts_are_refused(self, bad: object) -> None:
        with pytest.raises(ConfigurationError, match="timeout"):
            Client(NOWHERE).set_invoke_timeout(bad)  # type: ignore[arg-type]

    def test_bad_exchange_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="exchange"):
            Client(NOWHERE, exchange="")

    def test_encode_errors_reach_the_caller_before_connecting(self) -> None:
        client = Client(NOWHERE, codec=JSONCodec())
        with pytest.raises(EncodeError, match="json cannot encode"):
            client.svc.method({1, 2})
        with pytest.raises(EncodeError):
            client.notify("event", object())
        assert not client.is_connected
        assert client._worker is None  # nothing was started

    def test_bad_event_and_service_names(self) -> None:
        client = Client(NOWHERE)
        with pytest.raises(ConfigurationError, match="event"):
            client.notify("")
        with pytest.raises(ConfigurationError, match="service"):
            client.invoke("", "m")

    def test_stopped_client_refuses_calls(self) -> None:
        client = Client(NOWHERE)
        client.stop()
        with pytest.raises(ClientClosedError, match="stopped"):
            client.svc.method()

    def test_proxies(self) -> None:
        client = Client(NOWHERE)
        proxy = client.users
        assert isinstance(proxy, ServiceProxy)
        method = proxy.get_user
        assert isinstance(method, MethodProxy)
        assert repr(method) == "<MethodProxy users.get_user>"
        assert isinstance(method.with_timeout(3), MethodProxy)
        with pytest.raises(AttributeError):
            _ = client._private
        with pytest.raises(AttributeError):
            _ = proxy.__wrapped__

    def test_logging_level(self) -> None:
        import logging

        Client(NOWHERE).set_logging_level(logging.DEBUG)
        assert logging.getLogger("isc").level == logging.DEBUG
        logging.getLogger("isc").setLevel(logging.NOTSET)


class TestTracePropagation:
    """With opentelemetry-api installed, requests and notifications carry the caller's trace."""

    class Worker:
        """Stands in for the I/O worker: keeps what would be published."""

        def __init__(self) -> None:
            self.sent: list[Any] = []

        def submit(self, outgoing: Any) -> None:
            self.sent.append(outgoing)

    def test_calls_and_notifications_carry_the_current_trace(
        self, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
    ) -> None:
        trace = pytest.importorskip("opentelemetry.trace")
        from opentelemetry import context

        worker = self.Worker()
        client = Client(NOWHERE)
        request.addfinalizer(client.stop)
        monkeypatch.setattr(client, "_get_worker", lambda: worker)
        span = trace.NonRecordingSpan(
            trace.SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=trace.TraceFlags(1))
        )
        client.svc.method.call_async()  # outside any span: no trace header
        token = context.attach(trace.set_span_in_context(span))
        try:
            client.svc.method.call_async(1)
            client.notify("evt", 1)
        finally:
            context.detach(token)
        expected = f"00-{0xABC:032x}-{0xDEF:016x}-01"
        headers = [outgoing.envelope.headers for outgoing in worker.sent]
        assert "traceparent" not in headers[0]
        assert [h.get("traceparent") for h in headers[1:]] == [expected, expected]
        assert all(h["x-isc-version"] == 2 for h in headers)


@pytest.fixture
def no_collector() -> Any:
    """Objects only the cycle collector could free land in ``gc.garbage`` instead."""
    import gc

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _leftover_calls(gc: Any) -> list[str]:
    gc.collect()
    names = ("PendingCall", "FutureResult", "Outgoing")
    return [type(o).__name__ for o in gc.garbage if type(o).__name__ in names]


def test_an_answered_call_is_freed_without_the_cycle_collector(no_collector: Any) -> None:
    import pika

    client = Client(NOWHERE, reconnect_timeout=0)
    try:
        for n in range(3):
            future = client.call_async("calc", "add", (n, 1), timeout=30)
            cid = future.extra["correlation_id"]
            reply = Reply.success(cid, n + 1).encode(TypedJSONCodec())
            properties = pika.BasicProperties(
                content_type=reply.content_type, correlation_id=cid, headers=reply.headers
            )
            client._calls.on_reply(properties, reply.body)  # what the reply queue's consumer does
            assert future.result(0) == n + 1
            del future
        assert client.pending_calls == 0
        assert _leftover_calls(no_collector) == []
    finally:
        client.stop()


def test_a_call_that_timed_out_is_freed_without_the_cycle_collector(no_collector: Any) -> None:
    client = Client(NOWHERE, reconnect_timeout=0)
    try:
        with pytest.raises(TimeoutException):
            client.calc.add.with_timeout(0.05)(1, 1)
        future = client.call_async("calc", "add", (1, 1), timeout=0.05)
        with pytest.raises(TimeoutException):
            future.result(10)
        del future
        assert client.pending_calls == 0
        assert _leftover_calls(no_collector) == []
    finally:
        client.stop()


def test_a_call_that_ends_before_its_timeout_cancels_its_timer() -> None:
    import time

    import pika.spec

    client = Client(NOWHERE, reconnect_timeout=0)
    try:
        future = client.call_async("calc", "add", (1, 1), timeout=30)
        worker = client._worker
        assert worker is not None
        assert worker._shared is not None

        def armed() -> int:
            with worker._shared.lock:  # type: ignore[union-attr]
                heap = worker._ioloop._timer._timeout_heap
                return sum(1 for t in heap if t.callback and t.deadline > time.monotonic() + 20)

        def eventually(count: int) -> bool:
            # The loop may be busy (connecting): then it arms or cancels on its next pass.
            deadline = time.monotonic() + 10
            while armed() != count:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.005)
            return True

        assert eventually(1)  # the call's 30 s timer
        returned = pika.spec.Basic.Return(312, "NO_ROUTE", "isc", "isc_service_calc")
        properties = pika.BasicProperties(correlation_id=future.extra["correlation_id"])
        client._calls.on_return(returned, properties)  # the broker could not route it
        with pytest.raises(Exception, match="no node serves 'calc'"):
            future.result(0)
        assert eventually(0)
    finally:
        client.stop()
