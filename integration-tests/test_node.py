"""isc.server nodes (subprocesses) and isc.client callers against a real broker."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from isc.client import Client, RemoteException, TimeoutException
from isc.core import AbstractCodec, JSONCodec, PickleCodec, Reply
from isc.core.naming import service_queue_name
from isc.core.protocol import Envelope
from isc_testing import wait_for
from isc_testing.nodes import NodeProcess
from isc_testing.raw_service import RawService


def node_extra(codec: AbstractCodec) -> list[str]:
    """Node options for the matrix codec: pickle must be enabled explicitly."""
    return ["--allow-pickle"] if codec.content_type == "pickle" else []


@pytest.fixture
def calc_node(amqp_url: str, exchange: str, codec: AbstractCodec) -> Iterator[NodeProcess]:
    with NodeProcess.serve(
        amqp_url, exchange, "calc:Calc", "calc:Relay", extra=["--pool", "20", *node_extra(codec)]
    ) as node:
        yield node


@pytest.fixture
def client(amqp_url: str, exchange: str, codec: AbstractCodec) -> Iterator[Client]:
    c = Client(amqp_url, exchange=exchange, codec=codec, invoke_timeout=10)
    yield c
    c.stop()


def test_the_seed_behaviours(client: Client, calc_node: NodeProcess) -> None:
    assert client.calc.add(2, 3) == 5
    assert client.invoke("calc", "add", 2, 3) == 5
    with pytest.raises(RemoteException) as info:
        client.calc.add(2, "3")
    assert info.value.remote_type == "TypeError"
    with pytest.raises(RemoteException, match=r"^testing$"):
        client.calc.raise_error()
    with pytest.raises(RemoteException, match="not allowed to call unexposed method"):
        client.calc.private_method()
    with pytest.raises(RemoteException, match="Could not find method unexisting_method"):
        client.calc.unexisting_method()
    with pytest.raises(RemoteException, match=r"Wrong arguments for calc\.add\(a: ") as info:
        client.calc.add((2, "3"))
    assert str(info.value).endswith("missing a required argument: 'b'")
    client.set_invoke_timeout(1)
    with pytest.raises(TimeoutException):
        client.calc.slow_method()


def test_an_exception_without_message_is_still_an_error(
    client: Client, calc_node: NodeProcess
) -> None:
    with pytest.raises(RemoteException) as info:
        client.calc.raise_empty()
    assert str(info.value) == "ValueError"
    assert info.value.remote_type == "ValueError"


def test_inspect_lists_exposed_methods_and_listeners(
    client: Client, calc_node: NodeProcess
) -> None:
    described = client.calc._inspect()
    assert described["exposed"]["add"] == "(a: 'Any', b: 'Any', wait: 'float' = ...) -> 'Any'"
    assert "private_method" not in described["exposed"]
    assert described["listeners"] == {}


def test_inspect_counts_calls_errors_and_refusals(client: Client, calc_node: NodeProcess) -> None:
    for i in range(3):
        assert client.calc.add(i, 1, wait=0.01) == i + 1
    with pytest.raises(RemoteException):
        client.calc.raise_error()
    with pytest.raises(RemoteException, match="Wrong arguments"):
        client.calc.add(1)
    for name in ("nope", "private_method"):
        with pytest.raises(RemoteException):
            client.invoke("calc", name)

    metrics = client.calc._inspect()["metrics"]  # through the codec under test
    bounds = metrics["buckets"]
    add = metrics["methods"]["add"]
    assert (add["calls"], add["errors"], add["refused"]) == (3, 0, 1)
    assert sum(add["buckets"]) == 3
    assert len(add["buckets"]) == len(bounds) + 1
    assert add["buckets"][0] == 0  # each call slept 10 ms, more than the first bound
    assert add["seconds"] >= 0.03
    raised = metrics["methods"]["raise_error"]
    assert (raised["calls"], raised["errors"]) == (1, 1)
    assert metrics["unknown_methods"] == 2
    assert set(metrics["methods"]) == {"add", "raise_error"}  # _inspect counts after answering
    assert metrics["node"]["pid"] == client.calc.pid()
    assert client.calc._inspect()["metrics"]["methods"]["_inspect"]["calls"] == 1


def test_inspect_counts_listeners_and_timer_ticks(
    amqp_url: str, exchange: str, client: Client, codec: AbstractCodec
) -> None:
    with NodeProcess.serve(amqp_url, exchange, "calc:Events", extra=node_extra(codec)):
        client.notify("boom", 1)

        def handled() -> Any:
            metrics = client.events._inspect()["metrics"]
            listeners = metrics["listeners"]
            ticks = metrics["timers"].get("tick", {}).get("calls", 0)
            return metrics if len(listeners) == 2 and ticks >= 2 else None

        metrics = wait_for(handled, timeout=10, message="both listeners and two ticks")
    assert metrics["listeners"]["record"]["calls"] == 1
    assert metrics["listeners"]["record"]["errors"] == 0
    assert metrics["listeners"]["fail_on_boom"]["errors"] == 1
    tick = metrics["timers"]["tick"]
    assert tick["errors"] == (tick["calls"] + 1) // 2  # every odd tick fails


def test_calls_run_concurrently_up_to_the_pool_size(client: Client, calc_node: NodeProcess) -> None:
    futures = [client.calc.add.call_async(i, 1, wait=0.5) for i in range(20)]
    assert [f.result(10) for f in futures] == [i + 1 for i in range(20)]
    pids = {client.calc.pid() for _ in range(3)}
    assert len(pids) == 1


def test_a_client_inside_a_node_calls_another_service(
    client: Client, calc_node: NodeProcess
) -> None:
    # relay.add_via_calc runs in a gevent-patched node and calls calc.add with its own Client.
    futures = [client.relay.add_via_calc.call_async(i, i) for i in range(10)]
    assert [f.result(10) for f in futures] == [2 * i for i in range(10)]


def test_inside_a_node_a_fast_call_returns_while_another_greenlets_slow_call_waits(
    amqp_url: str, exchange: str, client: Client, calc_node: NodeProcess
) -> None:
    """The no-caller-waits-for-another contract under gevent: the node's Client serves two
    requests, one waiting on a service that holds it until the test opens its gate, one
    calling calc."""
    gate = threading.Event()
    with RawService(amqp_url, exchange, "stuck", {"wait": lambda: gate.wait(60)}) as stuck:
        try:
            slow = client.relay.call_via.with_timeout(60).call_async("stuck", "wait", 60)
            wait_for(lambda: len(stuck.requests) == 1, message="the relayed slow call")
            for n in range(5):
                assert client.relay.call_via("calc", "add", 5, n, 1) == n + 1
            assert not slow.done()  # the slow relayed call still waits
        finally:
            gate.set()
        assert slow.result(30) is True


def test_pickle_is_refused_unless_enabled(
    amqp_url: str, exchange: str, codec: AbstractCodec
) -> None:
    if codec.content_type == "pickle":
        pytest.skip("the pickle environment runs its nodes with pickle enabled")
    with (
        NodeProcess.serve(amqp_url, exchange, "calc:Calc") as node,
        Client(amqp_url, exchange=exchange, codec=PickleCodec(), invoke_timeout=10) as client,
    ):
        with pytest.raises(RemoteException, match="pickle codec is refused") as info:
            client.calc.add(1, 2)
        assert "allow_pickle=True" in str(info.value)
        client.set_codec(JSONCodec())
        assert client.calc.add(1, 2) == 3
    assert node.stop() == 0


def test_bad_requests_get_an_error_reply_or_are_dropped(
    amqp_url: str, exchange: str, client: Client, calc_node: NodeProcess
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        reply_queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(reply_queue, exchange, routing_key=reply_queue)
        target = service_queue_name(exchange, "calc")

        def publish(body: bytes, content_type: str, reply_to: str | None) -> None:
            channel.basic_publish(
                exchange,
                target,
                body,
                pika.BasicProperties(
                    content_type=content_type, correlation_id="c-1", reply_to=reply_to
                ),
            )

        def next_reply() -> Any:
            def get() -> Any:
                method, props, body = channel.basic_get(reply_queue, auto_ack=True)
                return (props, body) if method else None

            return wait_for(get, timeout=10, message="an error reply")

        publish(b"\xff\x00 not json", "json", reply_queue)
        props, body = next_reply()
        reply = Reply.decode(Envelope(body, props.content_type, headers=props.headers), JSONCodec())
        assert reply.error is not None
        assert "json cannot decode" in reply.error
        assert reply.error_type == "isc.core.errors.DecodeError"

        publish(b'["add", [1, 2], {}]', "no-such-codec", reply_queue)
        props, body = next_reply()
        reply = Reply.decode(Envelope(body, props.content_type, headers=props.headers), JSONCodec())
        assert reply.error is not None
        assert "no codec for content type 'no-such-codec'" in reply.error

        publish(b"garbage without a reply_to", "json", None)
        wait_for(
            lambda: "bad request for calc" in calc_node.output.split("no-such-codec")[-1],
            timeout=10,
            message="the node to log the dropped request",
        )
        assert client.calc.add(1, 1) == 2  # the node kept serving
        dropped = client.calc._inspect()["metrics"]["dropped"]
        assert dropped["bad_requests"] == 3
        assert dropped["requests_without_reply_to"] == 1
    finally:
        connection.close()


@pytest.mark.codec_independent
def test_hooks_run_around_calls(amqp_url: str, exchange: str) -> None:
    hooks = [f"--hook={name}=calc:{name}" for name in ("pre_call", "post_success", "post_error")]
    with (
        NodeProcess.serve(amqp_url, exchange, "calc:Hooked", extra=hooks),
        Client(amqp_url, exchange=exchange) as client,
    ):
        assert client.hooked.double(21) == 42
        with pytest.raises(RemoteException):
            client.hooked.fail()
        calls = client.hooked.calls()
    assert calls == [
        ["pre_call", "double", [21]],
        ["post_success", "double", [None, 42]],
        ["pre_call", "fail", []],
        ["post_error", "fail", "'nope'"],
    ]


def received_by_each_node(client: Client, nodes: int) -> dict[int, Any]:
    """Ask the `events` service until every node (by pid) has answered once."""
    seen: dict[int, Any] = {}

    def ask() -> bool:
        pid, received = client.events.report()
        seen[pid] = received
        return len(seen) >= nodes

    wait_for(ask, timeout=15, message=f"answers from {nodes} nodes")
    return seen


def test_a_notification_reaches_every_node_once(
    amqp_url: str, exchange: str, client: Client, codec: AbstractCodec
) -> None:
    extra = node_extra(codec)
    with (
        NodeProcess.serve(amqp_url, exchange, "calc:Events", extra=extra),
        NodeProcess.serve(amqp_url, exchange, "calc:Events", extra=extra),
    ):
        client.notify("boom", {"foo": "bar"})
        client.notify("bang", "alice", "Hello!", urgent=True)
        client.notify("ignored-event", 1)
        expected = [[[{"foo": "bar"}], {}], [["alice", "Hello!"], {"urgent": True}]]

        def both_received() -> bool:
            return all(r == expected for r in received_by_each_node(client, 2).values())

        wait_for(both_received, timeout=15, message="both nodes to receive both notifications")


def test_timers_keep_ticking_after_failures(
    amqp_url: str, exchange: str, client: Client, codec: AbstractCodec
) -> None:
    with NodeProcess.serve(amqp_url, exchange, "calc:Events", extra=node_extra(codec)) as node:
        wait_for(lambda: client.events.get_ticks() >= 4, timeout=10, message="4 timer ticks")
        assert "a failing tick must not stop the timer" in node.output


@pytest.mark.codec_independent
def test_sigterm_finishes_in_flight_calls_then_exits_0(amqp_url: str, exchange: str) -> None:
    node = NodeProcess.serve(amqp_url, exchange, "calc:Calc").start()
    with Client(amqp_url, exchange=exchange, invoke_timeout=15) as client:
        future = client.calc.slow_method.call_async(1.5)
        wait_for(lambda: client.calc.running() == 1, timeout=5, message="the slow call to start")
        started = time.monotonic()
        assert node.stop(signal.SIGTERM) == 0
        assert future.result(10) == 1.5
        assert time.monotonic() - started < 10
    assert "node stopped" in node.output


@pytest.mark.codec_independent
def test_a_service_queue_declared_otherwise_is_consumed_as_it_is(
    amqp_url: str, exchange: str
) -> None:
    queue = service_queue_name(exchange, "calc")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)  # not the legacy declaration
        with (
            NodeProcess.serve(amqp_url, exchange, "calc:Calc") as node,
            Client(amqp_url, exchange=exchange, invoke_timeout=10) as client,
        ):
            assert client.calc.add(1, 2) == 3
            assert "exists with other arguments than queue_type='legacy'" in node.output
    finally:
        channel.queue_delete(queue)
        connection.close()


@pytest.mark.codec_independent
def test_quorum_service_queues(amqp_url: str, exchange: str) -> None:
    queue = service_queue_name(exchange, "calc")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        with (
            NodeProcess.serve(amqp_url, exchange, "calc:Calc", extra=["--queue-type", "quorum"]),
            Client(amqp_url, exchange=exchange, invoke_timeout=10) as client,
        ):
            assert client.calc.add(1, 2) == 3
            channel = connection.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
                channel.queue_declare(queue, durable=False)  # what a legacy node declares
            assert info.value.reply_code == 406
            assert "x-queue-type" in info.value.reply_text or "durable" in info.value.reply_text
            with NodeProcess.serve(amqp_url, exchange, "calc:Calc") as legacy:
                assert "exists with other arguments" in legacy.output  # joined it anyway
                pids = {client.calc.pid() for _ in range(20)}
                assert legacy.pid in pids  # the broker shares the calls between both
    finally:
        connection.channel().queue_delete(queue)
        connection.close()
