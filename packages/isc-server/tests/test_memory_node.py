"""A Client and a Node end to end over the in-memory transport (no broker).

The in-memory broker is a unit-test tool: these tests check that Client and Node run their
own code over it; the integration suite proves they work over RabbitMQ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from isc.client import Client
from isc.client.testing import wait_for
from isc.client.testing.memory import MemoryBroker
from isc.core import (
    ConnectionLostError,
    NoNodeConsumingError,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
)
from isc.server import Node, cluster_timer, expose, on


class Calc:
    name = "calc"

    def __init__(self) -> None:
        self.heard: list[Any] = []

    @expose
    def add(self, a: int, b: int) -> int:
        return a + b

    @expose
    def fail(self) -> None:
        raise ValueError("no")

    @expose
    def slow(self) -> None:
        gevent.sleep(1)

    @on("added")
    def on_added(self, *args: Any) -> None:
        self.heard.append(args)


@pytest.fixture
def served() -> Iterator[tuple[MemoryBroker, Calc, Client]]:
    broker = MemoryBroker()
    calc = Calc()
    node = Node(exchange="mem", transport=broker.transport, drain_timeout=2)
    node.register_service(calc)
    thread = threading.Thread(target=node.run, daemon=True)
    thread.start()
    assert node.wait_for_ready(5)
    client = Client(exchange="mem", transport=broker.transport)
    try:
        yield broker, calc, client
    finally:
        client.stop()
        node.stop()
        thread.join(5)


def test_a_call_and_its_failure(served: tuple[MemoryBroker, Calc, Client]) -> None:
    broker, _calc, client = served
    assert client.calc.add(2, 3) == 5
    assert client.calc.add.call_async(1, 1).result(5) == 2
    with pytest.raises(RemoteException, match="no") as caught:
        client.calc.fail()
    assert caught.value.remote_type == "ValueError"
    assert broker.queues()["mem_service_calc"] == 0  # every request was acked


def test_a_notification_reaches_the_listener(served: tuple[MemoryBroker, Calc, Client]) -> None:
    _broker, calc, client = served
    client.notify("added", 1, "x")
    wait_for(lambda: calc.heard, timeout=5)
    assert calc.heard == [(1, "x")]


def test_an_unroutable_call_and_a_timeout(served: tuple[MemoryBroker, Calc, Client]) -> None:
    _broker, _calc, client = served
    with pytest.raises(ServiceNotFoundError, match="no node serves 'users'"):
        client.users.get_user(1)
    with pytest.raises(TimeoutException, match=r"calc\.slow within 0\.2s"):
        client.calc.slow.with_timeout(0.2)()
    assert client.pending_calls == 0


class Inventory:
    name = "inventory"

    @expose
    def reserve(self, item: str) -> None:
        raise ValueError(f"{item} is out of stock")


class Orders:
    name = "orders"

    def __init__(self, broker: MemoryBroker) -> None:
        self.client = Client(exchange="mem", transport=broker.transport)

    @expose
    def place(self, item: str) -> None:
        self.client.inventory.reserve(item)  # its RemoteException propagates


def test_a_nested_remote_error_keeps_its_type_and_chain() -> None:
    broker = MemoryBroker()
    orders = Orders(broker)
    node = Node(exchange="mem", transport=broker.transport, drain_timeout=2)
    node.register_service(Inventory())
    node.register_service(orders)
    thread = threading.Thread(target=node.run, daemon=True)
    thread.start()
    assert node.wait_for_ready(5)
    client = Client(exchange="mem", transport=broker.transport)
    try:
        with pytest.raises(RemoteException, match=r"^apple is out of stock$") as caught:
            client.orders.place("apple")
    finally:
        client.stop()
        orders.client.stop()
        node.stop()
        thread.join(5)
    assert caught.value.remote_type == "ValueError"
    assert caught.value.remote_chain == ("inventory.reserve", "orders.place")


class Sleeper:
    name = "sleeper"

    @expose
    def sleep(self) -> None:
        gevent.sleep(60)


def test_a_second_stop_signal_stops_at_once(caplog: pytest.LogCaptureFixture) -> None:
    broker = MemoryBroker()
    node = Node(exchange="mem", transport=broker.transport, drain_timeout=60)
    node.register_service(Sleeper())
    thread = threading.Thread(target=node.run, daemon=True)
    thread.start()
    assert node.wait_for_ready(5)
    node._signals_installed = True  # as in the main thread: the drain line names Ctrl-C
    client = Client(exchange="mem", transport=broker.transport)
    try:
        client.sleeper.sleep.call_async()
        wait_for(lambda: len(node._pool) == 1, timeout=5)
        with caplog.at_level("INFO", logger="isc.server"):
            node._on_stop_signal()  # the first: drains (for up to 60 s)
            wait_for(lambda: "press Ctrl-C again to stop at once" in caplog.text, timeout=5)
            assert not node._stopped.is_set()
            node._on_stop_signal()  # the second: cancels the call and stops
            thread.join(10)
        assert not thread.is_alive()
        assert "stopping at once: cancelling 1 call(s)" in caplog.text
    finally:
        client.stop()
        node.stop()


def test_a_deleted_service_queue_is_recreated_and_consumed_again(
    served: tuple[MemoryBroker, Calc, Client], caplog: pytest.LogCaptureFixture
) -> None:
    broker, _calc, client = served
    assert client.calc.add(1, 1) == 2
    assert broker.delete_queue("mem_service_calc")
    wait_for(lambda: broker.consumers("mem_service_calc") == 1, timeout=1)
    assert client.calc.add(2, 2) == 4
    lines = [
        r.getMessage() for r in caplog.records if "cancelled this node's consumer" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    assert "service 'calc'" in lines[0]


def test_a_deleted_notification_queue_is_replaced(
    served: tuple[MemoryBroker, Calc, Client],
) -> None:
    broker, calc, client = served
    (old,) = [name for name in broker.queues() if name.startswith("fanout_callback_")]
    assert broker.delete_queue(old)

    def replaced() -> bool:
        names = [name for name in broker.queues() if name.startswith("fanout_callback_")]
        return len(names) == 1 and names[0] != old and broker.consumers(names[0]) == 1

    wait_for(replaced, timeout=1)
    client.notify("added", 7)
    wait_for(lambda: calc.heard, timeout=5)
    assert calc.heard == [(7,)]


def test_a_deleted_reply_queue_fails_the_waiting_calls_and_is_replaced(
    served: tuple[MemoryBroker, Calc, Client],
) -> None:
    broker, _calc, client = served
    assert client.calc.add(1, 1) == 2
    waiting = client.calc.slow.call_async()
    worker = client._worker
    assert worker is not None
    old = worker.reply_to
    assert old is not None
    assert broker.delete_queue(old)
    with pytest.raises(ConnectionLostError, match="reply queue was deleted"):
        waiting.result(2)
    assert client.calc.add(3, 4) == 7
    assert worker.reply_to != old


def test_a_call_to_a_service_whose_nodes_stopped_fails_within_a_second() -> None:
    broker = MemoryBroker()
    node = Node(exchange="mem", transport=broker.transport, drain_timeout=2)
    node.register_service(Calc())
    thread = threading.Thread(target=node.run, daemon=True)
    thread.start()
    assert node.wait_for_ready(5)
    with Client(exchange="mem", transport=broker.transport, invoke_timeout=20) as client:
        assert client.calc.add(1, 1) == 2
        node.stop()
        thread.join(5)
        assert broker.consumers("mem_service_calc") == 0  # the queue outlives its node
        for call in (client.calc.add, lambda *a: client.calc.add.call_async(*a).result(20)):
            started = time.monotonic()
            with pytest.raises(NoNodeConsumingError, match="no node is consuming"):
                call(1, 2)
            assert time.monotonic() - started < 1.5


def test_a_slow_call_is_not_failed_by_the_consumer_check(
    served: tuple[MemoryBroker, Calc, Client],
) -> None:
    _broker, _calc, client = served
    assert client.calc.slow() is None  # 1 s: the check finds the node consuming
    assert client.calc.slow.call_async().result(5) is None


class Shop:
    """A service-mode listener and a cluster timer: consumers of durable queues of their own."""

    name = "shop"

    def __init__(self) -> None:
        self.paid: list[int] = []

    @on("paid", mode="service")
    def record(self, order: int) -> None:
        self.paid.append(order)

    @cluster_timer(timeout=60)
    def sweep(self) -> None:
        """Never ticks within a test: only its lease queue matters here."""


def test_deleted_listener_and_timer_queues_are_declared_and_consumed_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = MemoryBroker()
    node = Node(exchange="mem", transport=broker.transport)
    orders = Shop()
    node.register_service(orders)
    thread = threading.Thread(target=node.run, daemon=True)
    thread.start()
    try:
        assert node.wait_for_ready(5)
        listener = next(q for q in broker.queues() if "paid" in q and "dead" not in q)
        timer = next(q for q in broker.queues() if "sweep" in q)
        for queue in (listener, timer):
            wait_for(lambda q=queue: broker.consumers(q) == 1, timeout=5)
            assert broker.delete_queue(queue)
            wait_for(lambda q=queue: broker.consumers(q) == 1, timeout=1)
        with Client(exchange="mem", transport=broker.transport) as client:
            client.notify("paid", 42)
            wait_for(lambda: orders.paid == [42], timeout=5)
        lines = [
            r.getMessage()
            for r in caplog.records
            if "cancelled this node's consumer" in r.getMessage()
        ]
        assert len(lines) == 2, lines
        assert "service-mode listener shop.record for 'paid'" in lines[0]
        assert "cluster timer shop.sweep" in lines[1]
    finally:
        node.stop()
        thread.join(10)
