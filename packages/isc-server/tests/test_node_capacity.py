"""The node's I/O loop never waits: listeners have a bounded pool and backlog of their own,
and requests whose reply queue is gone are skipped (no broker: the loop's callbacks are
called directly)."""

from __future__ import annotations

import logging
from typing import Any

import gevent
import gevent.event
import pika.spec
import pytest

from isc.core import ConfigurationError, JSONCodec, Notification
from isc.server import Node, on

GUARD = 10  # seconds: a bound for waits that should end at once


class FakeChannel:
    def __init__(self) -> None:
        self.acks: list[tuple[int, bool]] = []

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))


class FakeWorker:
    def __init__(self) -> None:
        self.generation = 1
        self.channel = FakeChannel()


class Deliver:
    def __init__(self, tag: int) -> None:
        self.delivery_tag = tag
        self.routing_key = "isc_service_slow"


class Slow:
    """A listener that waits until the test releases it."""

    name = "slow"

    def __init__(self) -> None:
        self.release = gevent.event.Event()
        self.started: list[Any] = []

    @on("slow")
    def wait(self, n: int) -> None:
        self.started.append(n)
        self.release.wait(GUARD)


def broadcast(node: Node, event: str, *args: Any) -> None:
    """Deliver a notification to the node as its broadcast consumer would."""
    envelope = Notification(event, args).encode(JSONCodec())
    properties = pika.spec.BasicProperties(
        content_type=envelope.content_type,
        correlation_id=envelope.correlation_id or "c-1",
        headers=dict(envelope.headers),
    )
    node._on_broadcast(None, None, properties, envelope.body)  # type: ignore[arg-type]


def slow_node(**options: Any) -> tuple[Node, Slow]:
    node = Node(**options)
    service = Slow()
    node.register_service(service)
    node._listeners = node._services.listeners()  # what run() does
    return node, service


def test_listeners_have_a_pool_of_their_own_and_never_make_the_loop_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node, service = slow_node(thread_pool_size=2, listener_pool_size=2, max_queued_notifications=3)
    with caplog.at_level(logging.WARNING, logger="isc.server"), gevent.Timeout(GUARD):
        for n in range(10):  # the loop's callback returns for each, however full the pool
            broadcast(node, "slow", n)
    gevent.sleep(0)
    assert service.started == [0, 1]  # two listener slots
    assert node._pool.running == 0  # the call pool is untouched
    assert node.metrics.counters["dropped_notifications"] == 5  # 2 run, 3 wait, 5 dropped
    assert caplog.text.count("dropping notification 'slow'") == 1  # not one line per drop
    service.release.set()
    assert node._listener_pool.join(GUARD)
    assert service.started == [0, 1, 2, 3, 4]  # the oldest were kept, the newest dropped
    node.stop()  # ends the rate-limited log's timer with a summary line
    assert "dropped 4 more notification(s)" in caplog.text


def test_the_listener_pool_defaults_to_the_call_pool_size() -> None:
    node = Node(thread_pool_size=3)
    assert node._listener_pool.size == 3
    assert node._listener_pool.max_queued == 1000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"listener_pool_size": 0}, "listener_pool_size"),
        ({"max_queued_notifications": -1}, "max_queued_notifications"),
        ({"max_queued_notifications": 1.5}, "max_queued_notifications"),
    ],
)
def test_listener_capacity_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Node(**options)


def test_requests_queue_instead_of_waiting_for_a_slot() -> None:
    node = Node(thread_pool_size=1)
    node._worker = FakeWorker()  # type: ignore[assignment]
    release = gevent.event.Event()
    ran: list[int] = []

    def handle(service: str, generation: int, tag: int, *rest: Any) -> None:
        ran.append(tag)
        release.wait(GUARD)

    node._handle_request = handle  # type: ignore[method-assign]
    with gevent.Timeout(GUARD):
        for tag in (1, 2, 3):  # e.g. a new channel's deliveries while the old one's run
            node._on_request(None, Deliver(tag), None, b"")  # type: ignore[arg-type]
    assert node._pool.queued == 2
    release.set()
    assert node._pool.join(GUARD)
    assert ran == [1, 2, 3]


def test_queued_requests_are_left_to_the_broker_when_their_channel_goes() -> None:
    node = Node(thread_pool_size=1)
    node._worker = FakeWorker()  # type: ignore[assignment]
    release = gevent.event.Event()
    ran: list[int] = []

    def handle(service: str, generation: int, tag: int, *rest: Any) -> None:
        ran.append(tag)
        release.wait(GUARD)

    node._handle_request = handle  # type: ignore[method-assign]
    for tag in (1, 2, 3):
        node._on_request(None, Deliver(tag), None, b"")  # type: ignore[arg-type]
    node._on_disconnect(ConnectionError("cut"))  # the broker redelivers 2 and 3
    release.set()
    assert node._pool.join(GUARD)
    assert ran == [1]


class Return:
    def __init__(self, routing_key: str) -> None:
        self.routing_key = routing_key
        self.reply_code = 312
        self.reply_text = "NO_ROUTE"


def test_requests_for_a_reply_queue_that_came_back_unroutable_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = Node(thread_pool_size=4)
    worker = FakeWorker()
    node._worker = worker  # type: ignore[assignment]
    ran: list[int] = []
    node._handle_request = lambda s, g, tag, *rest: ran.append(tag)  # type: ignore[method-assign]
    gone = pika.spec.BasicProperties(reply_to="response-gone")
    alive = pika.spec.BasicProperties(reply_to="response-alive")
    with caplog.at_level(logging.WARNING, logger="isc.server"):
        node._on_request(None, Deliver(1), gone, b"")  # type: ignore[arg-type]
        node._on_return(Return("response-gone"), gone)  # type: ignore[arg-type]
        node._on_return(Return("response-gone"), gone)  # type: ignore[arg-type]
        for tag, properties in ((2, gone), (3, alive), (4, gone)):
            node._on_request(None, Deliver(tag), properties, b"")  # type: ignore[arg-type]
    assert node._pool.join(GUARD)
    assert ran == [1, 3]  # the first ran before the node knew; 2 and 4 were skipped
    assert sorted(tag for tag, _ in worker.channel.acks) == [2, 4]
    assert node.metrics.counters["orphaned_requests"] == 2
    assert node.metrics.counters["unroutable_replies"] == 2
    assert caplog.text.count("'response-gone' was returned") == 1
    assert caplog.text.count("skipping request(s) for reply queue 'response-gone'") == 1


def test_the_node_remembers_a_bounded_number_of_gone_reply_queues(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("isc.server._node.MAX_GONE_REPLY_QUEUES", 3)
    node = Node()
    for n in range(5):
        node._on_return(Return(f"q{n}"), None)  # type: ignore[arg-type]
    assert list(node._gone_reply_queues) == ["q2", "q3", "q4"]


def test_isc_run_passes_the_listener_options_it_is_given() -> None:
    from argparse import Namespace

    from isc.server.cli_run import _node_options

    assert _node_options(Namespace()) == {}  # a parser without the options
    assert _node_options(Namespace(listener_pool=None, max_queued_notifications=None)) == {}
    given = Namespace(listener_pool=3, max_queued_notifications=0)
    assert _node_options(given) == {"listener_pool_size": 3, "max_queued_notifications": 0}


def test_isc_run_no_inspect_turns_inspect_off() -> None:
    from isc.client.cli import build_parser
    from isc.server.cli_run import _node_options

    assert _node_options(build_parser().parse_args(["run", "m:C"]))["allow_inspect"] is True
    args = build_parser().parse_args(["run", "m:C", "--no-inspect"])
    assert _node_options(args)["allow_inspect"] is False


def test_an_event_with_more_listeners_than_the_node_holds_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Many:
        name = "many"

        @on("busy")
        def first(self) -> None: ...

        @on("busy")
        def second(self) -> None: ...

    node = Node(listener_pool_size=1, max_queued_notifications=0)
    node.register_service(Many())
    node._listeners = node._services.listeners()
    with caplog.at_level(logging.WARNING, logger="isc.server"):
        node._check_listener_capacity()
    assert "event 'busy' has 2 listeners" in caplog.text


def test_service_mode_prefetch_follows_the_listener_pool_and_backlog() -> None:
    url = "amqp://guest:guest@127.0.0.1:1/"
    assert Node(url=url, listener_pool_size=4)._service_prefetch() == 32
    assert (
        Node(url=url, listener_pool_size=4, max_queued_notifications=10)._service_prefetch() == 14
    )
    assert Node(url=url, listener_pool_size=4, max_queued_notifications=0)._service_prefetch() == 4
