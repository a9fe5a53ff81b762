"""The fault suite: broker restarts, cut connections, killed and stopped nodes, blocked loops.

Each test injects one fault into real processes (a throwaway RabbitMQ, node subprocesses, a TCP
proxy) and checks what callers see. Recovery times are printed (run with ``-s`` to see them);
docs/reliability.md states the guarantees these tests hold the library to.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pika
import pytest

from isc.client import (
    Client,
    ConnectionLostError,
    IscError,
    MessageTooLargeError,
    NoNodeConsumingError,
    RemoteException,
    TimeoutException,
)
from isc.core import AbstractCodec
from isc.core.naming import dead_letter_queue_name, listener_queue_name
from isc_testing import RabbitMQNode, TcpProxy, wait_for
from isc_testing.nodes import NodeProcess

pytestmark = pytest.mark.fault


def node_extra(codec: AbstractCodec) -> list[str]:
    """Node options for the matrix codec: pickle must be enabled explicitly."""
    return ["--allow-pickle"] if codec.content_type == "pickle" else []


@pytest.fixture
def work_node(amqp_url: str, exchange: str) -> Iterator[NodeProcess]:
    with NodeProcess.serve(amqp_url, exchange, "calc:Work", "calc:Events") as node:
        yield node


def _answers(client: Client) -> bool:
    try:
        return bool(client.calc.add.with_timeout(1)(1, 1) == 2)
    except IscError:
        return False


@pytest.mark.codec_independent
@pytest.mark.xdist_group("broker-outage")
def test_a_broker_restart_is_survived_by_clients_and_nodes(
    rabbitmq_node: RabbitMQNode, exchange: str
) -> None:
    url = rabbitmq_node.amqp_url
    node = NodeProcess.serve(url, exchange, "calc:Calc", "calc:Events").start()
    client = Client(url, exchange=exchange, invoke_timeout=5)
    try:
        node_pid = client.calc.pid()
        rabbitmq_node.stop()
        wait_for(lambda: not client.is_connected, timeout=10, message="the client to notice")

        # A call made during the outage waits for a connection up to its own deadline...
        started = time.monotonic()
        with pytest.raises(TimeoutException, match="not connected to") as info:
            client.calc.add.with_timeout(1.5)(1, 2)
        waited = time.monotonic() - started
        assert 1.5 <= waited < 1.5 + 0.5, waited
        assert "guest:guest" not in str(info.value)  # the password is never shown
        # ... and one whose deadline outlasts the outage is sent once the broker is back.
        survivor = client.calc.add.with_timeout(60).call_async(20, 22)

        rabbitmq_node.start()
        back = time.monotonic()
        wait_for(lambda: _answers(client), timeout=5, message="calls to work again")
        print(f"\nbroker restart: calls answered again {time.monotonic() - back:.2f}s after")
        assert survivor.result(10) == 42
        assert client.calc.pid() == node_pid  # the same node process reconnected
    finally:
        client.stop()
        node.stop()


@pytest.mark.codec_independent
@pytest.mark.xdist_group("broker-outage")
@pytest.mark.parametrize("queue_type", ["auto", "quorum"])
def test_service_mode_notifications_confirmed_before_a_broker_restart_are_all_handled(
    rabbitmq_node: RabbitMQNode, exchange: str, queue_type: str
) -> None:
    """Sent (and confirmed) while no node of the service runs, then the broker restarts: a
    node started afterwards handles every one. Quorum queues keep every message; a classic
    durable queue (the default's) keeps persistent ones, and notifications are persistent."""
    url = rabbitmq_node.amqp_url
    extra = ["--queue-type", queue_type]
    sent = [{"order": n} for n in range(20)]
    try:
        with NodeProcess.serve(url, exchange, "modes:Orders", extra=extra):
            pass  # the service's durable queue exists from its first run on
        with Client(url, exchange=exchange, invoke_timeout=10) as client:
            for order in sent:
                client.notify("order.placed", order)
            assert client.flush(10)
        rabbitmq_node.stop()
        rabbitmq_node.start()
        with (
            NodeProcess.serve(url, exchange, "modes:Orders", extra=extra),
            Client(url, exchange=exchange, invoke_timeout=10) as client,
        ):
            wait_for(
                lambda: client.orders.report()[1] == sent,
                timeout=10,
                message="every confirmed notification to be handled",
            )
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        for method, event in (("handle", "order.placed"), ("fail", "order.bad")):
            channel.queue_delete(listener_queue_name(exchange, "orders", method, event))
            channel.queue_delete(dead_letter_queue_name(exchange, "orders", method, event))
        connection.close()


@pytest.mark.codec_independent
def test_a_cut_client_connection_fails_the_call_promptly_then_recovers(
    tcp_proxy: TcpProxy, amqp_url: str, exchange: str, work_node: NodeProcess
) -> None:
    assert tcp_proxy.url is not None
    with Client(tcp_proxy.url, exchange=exchange, invoke_timeout=30) as client:
        assert client.wait_connected(10)
        future = client.work.work.call_async(3)
        wait_for(lambda: client.work.started_count() == 1, message="the call to start")
        started = time.monotonic()
        tcp_proxy.cut()
        with pytest.raises(ConnectionLostError, match=r"work\.work"):
            future.result(10)
        print(f"\nclient cut: the call failed {time.monotonic() - started:.2f}s after the cut")
        assert time.monotonic() - started < 5  # not its 30 s timeout
        assert client.work.started_count() == 1  # reconnected; nothing was sent twice


@pytest.mark.codec_independent
def test_a_cut_node_connection_still_answers_the_call(
    tcp_proxy: TcpProxy, amqp_url: str, exchange: str
) -> None:
    assert tcp_proxy.url is not None
    with (
        NodeProcess.serve(tcp_proxy.url, exchange, "calc:Work") as node,
        Client(amqp_url, exchange=exchange, invoke_timeout=30) as client,
    ):
        future = client.work.work.call_async(1.5)
        wait_for(lambda: client.work.started_count() == 1, message="the call to start")
        started = time.monotonic()
        assert tcp_proxy.cut() >= 1
        # The reply waits for the node's reconnect; the unacked request is redelivered too.
        assert future.result(20) == node.pid
        print(f"\nnode cut: the call was answered {time.monotonic() - started:.2f}s after")
        wait_for(lambda: tcp_proxy.accepted >= 2, message="the node to reconnect")
        assert "lost its connection" in node.output
        # The redelivered copy ran again; its reply is counted and dropped.
        wait_for(
            lambda: client.stats["dropped_replies"] >= 1, message="the duplicate reply to arrive"
        )


@pytest.mark.codec_independent
def test_notifications_accepted_around_a_cut_are_all_delivered(
    tcp_proxy: TcpProxy, amqp_url: str, exchange: str, work_node: NodeProcess
) -> None:
    assert tcp_proxy.url is not None
    with (
        Client(tcp_proxy.url, exchange=exchange) as notifier,
        Client(amqp_url, exchange=exchange, invoke_timeout=10) as checker,
    ):
        assert notifier.wait_connected(10)
        for i in range(100):
            notifier.notify("bang", i)
        assert notifier.flush(10)
        # The network path dies: these are written to the socket but never reach the broker.
        tcp_proxy.blackhole()
        for i in range(100, 200):
            notifier.notify("bang", i)
        wait_for(lambda: tcp_proxy.swallowed > 0, message="notifications to vanish")
        tcp_proxy.cut()
        wait_for(lambda: not notifier.is_connected, message="the notifier to notice the cut")
        for i in range(200, 300):  # accepted while disconnected
            notifier.notify("bang", i)
        assert notifier.flush(20), "the broker did not confirm every notification"
        assert notifier.stats["republished"] >= 100  # at least the ones that vanished

        def received() -> list[int]:
            return [args[0] for args, _kwargs in checker.events.get_received()]

        wait_for(
            lambda: set(received()) == set(range(300)),
            timeout=20,
            message="every notification to arrive",
        )
        print(f"\ncut during notify: 300 delivered, {len(received()) - 300} duplicate(s)")


@pytest.mark.codec_independent
def test_a_killed_node_gives_a_timeout_and_its_call_never_runs_elsewhere(
    amqp_url: str, exchange: str
) -> None:
    first = NodeProcess.serve(amqp_url, exchange, "calc:Work").start()
    with Client(amqp_url, exchange=exchange, invoke_timeout=10) as client:
        deadline = time.monotonic() + 2
        future = client.work.work.with_timeout(2).call_async(30)
        wait_for(lambda: client.work.started_count() == 1, message="the call to start")
        first.kill()
        started = time.monotonic()
        # The request went back to the queue, which nobody consumes now: the call fails with
        # NoNodeConsumingError if its consumer check (0.75 s after the call) came after the
        # kill, else with its timeout.
        with pytest.raises(
            (TimeoutException, NoNodeConsumingError),
            match=r"no reply from work\.work within 2s|no node is consuming",
        ):
            future.result(5)
        assert time.monotonic() - started < 2.5
        # The request went back to the queue when the node died. Until its deadline a node
        # that starts would still run it (NoNodeConsumingError comes before the deadline, see
        # docs/reliability.md); after it, none does. What is awaited is the clock itself.
        wait_for(lambda: time.monotonic() > deadline + 0.1, message="the call's deadline")
        with NodeProcess.serve(amqp_url, exchange, "calc:Work") as second:
            assert client.work.work(0) == second.pid
            assert client.work.started_count() == 1  # only the call just made


@pytest.mark.codec_independent
def test_a_stopped_node_finishes_its_calls_and_leaves_the_rest_to_others(
    amqp_url: str, exchange: str
) -> None:
    first = NodeProcess.serve(amqp_url, exchange, "calc:Work", extra=["--pool", "2"]).start()
    with Client(amqp_url, exchange=exchange, invoke_timeout=30) as client:
        futures = [client.work.work.call_async(2) for _ in range(6)]
        # Both pool slots are busy, so ask the node's output rather than the node.
        wait_for(lambda: first.output.count("work-started") == 2, message="two calls to start")
        assert first.stop(signal.SIGTERM) == 0  # drained: its two calls were answered
        with NodeProcess.serve(amqp_url, exchange, "calc:Work", extra=["--pool", "4"]) as second:
            pids = [future.result(20) for future in futures]
    assert pids.count(first.pid) == 2
    assert pids.count(second.pid) == 4


@pytest.fixture
def fast_heartbeat_node(amqp_url: str, exchange: str) -> Iterator[tuple[NodeProcess, Client]]:
    """A Work node with a 1 s heartbeat (blocking its loop for 4 s costs it its connection)."""
    with (
        NodeProcess.serve(f"{amqp_url}?heartbeat=1", exchange, "calc:Work") as node,
        Client(amqp_url, exchange=exchange, invoke_timeout=30) as client,
    ):
        yield node, client


@pytest.mark.codec_independent
def test_cpu_bound_work_in_run_blocking_keeps_the_node_connected(
    fast_heartbeat_node: tuple[NodeProcess, Client],
) -> None:
    node, client = fast_heartbeat_node
    spinning = client.work.spin.call_async(4)
    assert client.work.blob(3) == "xxx"  # answered while the CPU-bound call runs
    assert not spinning.done()
    assert spinning.result(20) > 0
    assert client.work.started_count() == 0
    assert "lost its connection" not in node.output


@pytest.mark.codec_independent
def test_cpu_bound_work_on_the_loop_costs_the_node_its_connection(
    fast_heartbeat_node: tuple[NodeProcess, Client],
) -> None:
    # The control for the test above: the same work without run_blocking starves heartbeats.
    node, client = fast_heartbeat_node
    with pytest.raises(TimeoutException):
        client.work.spin_inline.with_timeout(6)(4)
    wait_for(lambda: "lost its connection" in node.output, message="the node to be dropped")


def _dropped(client: Client, service: str) -> dict[str, int]:
    """The node-wide drop counters of the node serving ``service``, through ``_inspect``."""
    dropped: dict[str, int] = client.invoke(service, "_inspect")["metrics"]["dropped"]
    return dropped


@pytest.mark.codec_independent
def test_a_flood_of_slow_notifications_leaves_calls_answered_and_the_node_connected(
    amqp_url: str, exchange: str
) -> None:
    # Listeners wait behind a gate: 2 run, 10 wait for a listener slot, 18 are dropped. Before
    # listeners had a pool of their own, the node's loop waited for a slot of the call pool:
    # it read nothing, answered nothing and missed its 2 s heartbeats.
    extra = ["--pool", "2", "--listener-pool", "2", "--max-queued-notifications", "10"]
    with (
        NodeProcess.serve(
            f"{amqp_url}?heartbeat=2", exchange, "calc:Work", "calc:Gated", extra=extra
        ) as node,
        Client(amqp_url, exchange=exchange, invoke_timeout=10) as client,
    ):
        for _ in range(30):
            client.notify("gated", 30)
        assert client.flush(10)
        wait_for(
            lambda: _dropped(client, "work")["dropped_notifications"] == 18,
            message="the overflow to be counted",
        )
        # Every listener slot is taken and the backlog is full; calls are still answered.
        assert [client.work.work(0) for _ in range(5)] == [node.pid] * 5
        assert client.gated.state() == {"running": 2, "finished": 0, "calls": 0}
        client.gated.open()
        wait_for(lambda: client.gated.state()["finished"] == 12, message="the backlog to drain")
        assert client.work.started_count() == 5  # no call ran twice
        assert _dropped(client, "work")["dropped_notifications"] == 18
        assert node.output.count("dropping notification 'gated'") == 1  # not one per drop
        assert "lost its connection" not in node.output


@pytest.mark.codec_independent
def test_requests_whose_caller_is_gone_are_skipped_once_a_reply_comes_back(
    tcp_proxy: TcpProxy, amqp_url: str, exchange: str
) -> None:
    assert tcp_proxy.url is not None
    with (
        NodeProcess.serve(amqp_url, exchange, "calc:Gated", extra=["--pool", "1"]) as node,
        Client(amqp_url, exchange=exchange, invoke_timeout=30) as checker,
        Client(tcp_proxy.url, exchange=exchange, invoke_timeout=30) as caller,
    ):
        assert caller.wait_connected(10)
        futures = [caller.gated.wait.call_async(30) for _ in range(4)]
        # The node's one slot holds the first call; the other three wait in the queue.
        wait_for(lambda: "gated-call-started 1" in node.output, message="the call to start")
        tcp_proxy.cut()
        for future in futures:
            with pytest.raises(ConnectionLostError):
                future.result(10)
        # Reconnected: the broker has long dropped the old connection and its reply queue.
        wait_for(lambda: caller.is_connected, message="the caller to reconnect")
        checker.notify("open_gate")  # a listener opens the gate: the call slot is taken
        # The first call ran and its reply came back unroutable; the node skipped the rest.
        wait_for(
            lambda: _dropped(checker, "gated")["orphaned_requests"] == 3,
            message="the orphaned requests to be skipped",
        )
        assert checker.gated.state()["calls"] == 1
        dropped = _dropped(checker, "gated")
        assert dropped["unroutable_replies"] == 1
        assert node.output.count("skipping request(s) for reply queue") == 1
        assert caller.gated.wait(0) == node.pid  # the caller's new reply queue works


def test_message_size_limits_give_clear_errors_on_both_sides(
    amqp_url: str, exchange: str, codec: AbstractCodec
) -> None:
    extra = ["--max-message-size", "20000", *node_extra(codec)]
    with NodeProcess.serve(amqp_url, exchange, "calc:Work", extra=extra):
        with Client(amqp_url, exchange=exchange, codec=codec, max_message_size=10_000) as small:
            with pytest.raises(MessageTooLargeError, match="over this client's max_message_size"):
                small.work.blob.call_async("x" * 20_000)
            with pytest.raises(MessageTooLargeError, match=r"reply of work\.blob is"):
                small.work.blob(15_000)
            assert small.work.blob(10) == "x" * 10
        with Client(amqp_url, exchange=exchange, codec=codec, max_message_size=None) as big:
            with pytest.raises(RemoteException, match="over this node's max_message_size") as info:
                big.work.blob(0, "x" * 30_000)
            assert info.value.remote_type == "isc.core.errors.MessageTooLargeError"
            with pytest.raises(RemoteException, match=r"the reply is \d+ bytes") as info:
                big.work.blob(30_000)
            assert big.work.blob(10) == "x" * 10  # the node kept serving


def test_a_thousand_concurrent_slow_calls_on_one_node(
    amqp_url: str, exchange: str, codec: AbstractCodec
) -> None:
    extra = ["--pool", "1000", *node_extra(codec)]
    with (
        NodeProcess.serve(amqp_url, exchange, "calc:Work", extra=extra) as node,
        Client(amqp_url, exchange=exchange, codec=codec, invoke_timeout=30) as client,
    ):
        started = time.monotonic()
        futures = [client.work.work.call_async(1) for _ in range(1000)]
        assert all(future.result(30) == node.pid for future in futures)
        elapsed = time.monotonic() - started
        print(f"\n1000 concurrent 1 s calls ({codec.content_type}): {elapsed:.2f}s")
