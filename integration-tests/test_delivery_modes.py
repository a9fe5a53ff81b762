"""Delivery modes against a real broker: ``@on(event, mode="service")`` and ``@cluster_timer``.

Service-mode listeners consume a durable queue per (service, method, event) bound to the
fanout exchange; a cluster timer ticks on the node holding the lease of its
single-active-consumer queue. Node processes host ``services/modes.py``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika
import pytest

from isc.client import Client
from isc.core import AbstractCodec, JSONCodec
from isc.core.naming import dead_letter_queue_name, listener_queue_name, timer_queue_name
from isc_testing import wait_for
from isc_testing.nodes import NodeProcess

#: The period of ``modes.Ticker.tick`` (seconds).
TICK = 0.2


def node_extra(codec: AbstractCodec) -> list[str]:
    """Node options for the matrix codec: pickle must be enabled explicitly."""
    return ["--allow-pickle"] if codec.content_type == "pickle" else []


def durable_queues(exchange: str) -> list[str]:
    """Every durable queue the nodes of ``services/modes.py`` declare."""
    listeners = [("handle", "order.placed"), ("fail", "order.bad")]
    return [
        *(listener_queue_name(exchange, "orders", m, e) for m, e in listeners),
        *(dead_letter_queue_name(exchange, "orders", m, e) for m, e in listeners),
        timer_queue_name(exchange, "ticker", "tick"),
    ]


@pytest.fixture
def broker(
    amqp_url: str, exchange: str
) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A channel to the broker; the test's durable queues are deleted afterwards (they
    outlive nodes by design, and the exchange fixture deletes exchanges only)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        yield connection.channel()
    finally:
        channel = connection.channel()
        for queue in durable_queues(exchange):
            channel.queue_delete(queue)
        connection.close()


def start_all(*nodes: NodeProcess) -> list[NodeProcess]:
    """Start node processes side by side (each start waits for its node to be ready)."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        return list(pool.map(NodeProcess.start, nodes))


def reports(
    client: Client, service: str, nodes: int, done: Callable[[dict[int, Any]], bool]
) -> dict[int, Any]:
    """Ask ``service.report()`` (answering ``[pid, ...]``) until ``nodes`` nodes answered and
    ``done`` holds for their latest answers; return them by pid."""
    latest: dict[int, Any] = {}

    def ask() -> bool:
        pid, *rest = client.invoke(service, "report")
        latest[pid] = rest
        return len(latest) >= nodes and done(latest)

    wait_for(ask, timeout=20, message=f"{service} on {nodes} node(s) to report")
    return latest


@pytest.mark.codec_independent
def test_service_mode_notifications_sent_while_no_node_runs_are_handled_when_one_starts(
    amqp_url: str, exchange: str, broker: Any
) -> None:
    codec = JSONCodec()
    extra: list[str] = []
    with NodeProcess.serve(amqp_url, exchange, "modes:Orders", extra=extra):
        pass  # a node of the service ran once: its durable queue exists from now on
    with Client(amqp_url, exchange=exchange, codec=codec, invoke_timeout=10) as client:
        for n in range(20):
            client.notify("order.placed", {"order": n})
        assert client.flush(10)  # confirmed by the broker while no node runs
        with NodeProcess.serve(amqp_url, exchange, "modes:Orders", extra=extra):
            (handled, seen, _failures) = reports(
                client, "orders", 1, lambda r: len(next(iter(r.values()))[0]) >= 20
            ).popitem()[1]
    assert handled == [{"order": n} for n in range(20)]
    assert seen == []  # the broadcast listener was not running when they were sent


def test_two_nodes_handle_each_service_mode_notification_once_between_them(
    amqp_url: str, exchange: str, codec: AbstractCodec, broker: Any
) -> None:
    extra = node_extra(codec)
    sent = [{"order": n} for n in range(30)]
    nodes = start_all(
        *(NodeProcess.serve(amqp_url, exchange, "modes:Orders", extra=extra) for _ in range(2))
    )
    try:
        with Client(amqp_url, exchange=exchange, codec=codec, invoke_timeout=10) as client:
            for order in sent:
                client.notify("order.placed", order)

            def all_handled(latest: dict[int, Any]) -> bool:
                handled = sum(len(r[0]) for r in latest.values())
                return handled >= len(sent) and all(len(r[1]) >= len(sent) for r in latest.values())

            latest = reports(client, "orders", 2, all_handled)
    finally:
        for node in nodes:
            node.stop()
    handled = [order for r in latest.values() for order in r[0]]
    assert sorted(handled, key=lambda o: o["order"]) == sent  # once each, between the two
    for _handled, seen, _failures in latest.values():
        assert seen == sent  # broadcast: every node got every one


@pytest.mark.codec_independent
def test_a_failing_service_mode_listener_is_retried_then_dead_lettered(
    amqp_url: str, exchange: str, broker: Any
) -> None:
    dead = dead_letter_queue_name(exchange, "orders", "fail", "order.bad")
    with (
        NodeProcess.serve(amqp_url, exchange, "modes:Orders") as node,
        Client(amqp_url, exchange=exchange, invoke_timeout=10) as client,
    ):
        client.notify("order.bad", "x1")

        def dead_lettered() -> bool:
            return broker.queue_declare(dead, passive=True).method.message_count == 1

        wait_for(dead_lettered, timeout=10, message="the notification to be dead-lettered")
        (_handled, _seen, failures) = reports(client, "orders", 1, lambda r: True).popitem()[1]
        assert failures == 3  # the first try and two retries (retries=2)
        counters = client.orders._inspect()["metrics"]["dropped"]
        assert counters["retried_notifications"] == 2
        assert counters["dead_lettered_notifications"] == 1
        assert "failed (attempt 1 of 3); retrying" in node.output
        assert "failed (attempt 2 of 3); retrying" in node.output
        assert "failed 3 time(s): notification" in node.output
        assert f"dead-lettered to queue {dead!r}" in node.output
    method, properties, body = broker.basic_get(dead, auto_ack=True)
    assert method is not None
    assert json.loads(body) == ["order.bad", "x1"]
    assert properties.headers["x-isc-retries"] == 2
    assert properties.headers["x-death"][0]["reason"] == "rejected"


@pytest.mark.codec_independent
def test_inspect_shows_listener_modes_and_timer_scopes(
    amqp_url: str, exchange: str, broker: Any
) -> None:
    with (
        NodeProcess.serve(amqp_url, exchange, "modes:Orders", "modes:Ticker"),
        Client(amqp_url, exchange=exchange, invoke_timeout=10) as client,
    ):
        orders = client.orders._inspect()
        ticker = client.ticker._inspect()
    assert orders["listeners"] == {  # as isclib 1.x answers
        "fail": ["order.bad"],
        "handle": ["order.placed"],
        "see": ["order.placed"],
    }
    assert orders["listener_modes"] == {
        "fail": {"order.bad": "service"},
        "handle": {"order.placed": "service"},
        "see": {"order.placed": "broadcast"},
    }
    assert ticker["timers"] == {"tick": [{"timeout": TICK, "scope": "cluster"}]}


def ticks_by_node(
    client: Client, nodes: int, done: Callable[[dict[int, list[float]]], bool]
) -> dict[int, list[float]]:
    """The ticks of ``modes.Ticker`` on each of ``nodes`` nodes, once ``done`` holds."""
    latest = reports(client, "ticker", nodes, lambda r: done({p: v[0] for p, v in r.items()}))
    return {pid: rest[0] for pid, rest in latest.items()}


def assert_one_tick_per_interval(ticks: list[float]) -> None:
    """Consecutive ticks (of any node) are one period apart: none doubled, none missed."""
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert gaps, "no consecutive ticks"
    assert min(gaps) > 0.6 * TICK, gaps
    assert max(gaps) < 1.6 * TICK, gaps


@pytest.mark.codec_independent
def test_a_cluster_timer_ticks_once_per_interval_on_three_nodes_and_fails_over(
    amqp_url: str, exchange: str, broker: Any
) -> None:
    nodes = start_all(*(NodeProcess.serve(amqp_url, exchange, "modes:Ticker") for _ in range(3)))
    try:
        with Client(amqp_url, exchange=exchange, invoke_timeout=5) as client:
            # Counted over a window of 5 ticks: one node ticks, once per interval.
            first = ticks_by_node(client, 3, lambda t: sum(map(len, t.values())) >= 5)
            tickers = [pid for pid, ticks in first.items() if ticks]
            assert len(tickers) == 1, first
            assert_one_tick_per_interval(first[tickers[0]])

            # Kill the ticking node: another takes over within two intervals.
            ticker = next(node for node in nodes if node.pid == tickers[0])
            os.killpg(ticker.pid, signal.SIGKILL)
            killed_at = time.time()
            ticker.kill()
            after = ticks_by_node(client, 2, lambda t: sum(map(len, t.values())) >= 3)
        new_tickers = [pid for pid, ticks in after.items() if ticks]
        assert len(new_tickers) == 1, after
        ticks = after[new_tickers[0]]
        print(f"\ncluster timer failover: ticking again {ticks[0] - killed_at:.3f}s after the kill")
        assert ticks[0] - killed_at < 2 * TICK  # failed over within two intervals
        assert ticks[0] - first[tickers[0]][-1] > 0.9 * TICK  # no double tick at takeover
        assert_one_tick_per_interval(ticks)
    finally:
        for node in nodes:
            node.stop()
