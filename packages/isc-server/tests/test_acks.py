"""The node acks finished requests in batches, never one that still runs (no broker)."""

from __future__ import annotations

import pytest

from isc.server import Node, expose
from isc.server._services import MethodError, ServiceTable


class FakeChannel:
    def __init__(self) -> None:
        self.acks: list[tuple[int, bool]] = []

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))


class FakeWorker:
    def __init__(self) -> None:
        self.generation = 1
        self.channel: FakeChannel | None = FakeChannel()


class Deliver:
    def __init__(self, tag: int) -> None:
        self.delivery_tag = tag
        self.routing_key = "isc_service_calc"


def node_with_deliveries(*tags: int) -> tuple[Node, FakeChannel]:
    node = Node()
    worker = FakeWorker()
    node._worker = worker  # type: ignore[assignment]
    node._pool.spawn = lambda *args: None  # type: ignore[method-assign]  # nothing runs
    for tag in tags:
        node._on_request(None, Deliver(tag), None, b"")  # type: ignore[arg-type]
    assert worker.channel is not None
    return node, worker.channel


def test_requests_finished_in_order_get_one_multiple_ack() -> None:
    node, channel = node_with_deliveries(1, 2, 3)
    for tag in (1, 2, 3):
        node._ack_later(1, tag)
    node._flush_acks()
    assert channel.acks == [(3, True)]


def test_a_running_request_is_never_covered_by_a_multiple_ack() -> None:
    node, channel = node_with_deliveries(1, 2, 3, 4)
    node._ack_later(1, 2)
    node._ack_later(1, 4)
    node._flush_acks()  # 1 and 3 still run: 2 and 4 are acked alone, at once
    assert sorted(channel.acks) == [(2, False), (4, False)]
    channel.acks.clear()
    node._ack_later(1, 1)
    node._flush_acks()  # 3 still runs: the multiple ack stops below it
    assert channel.acks == [(1, True)]
    channel.acks.clear()
    node._ack(1, 3)  # a request without a reply: acked at once
    assert channel.acks == [(3, True)]


def test_requests_of_a_closed_channel_are_not_acked() -> None:
    node, channel = node_with_deliveries(1, 2)
    assert node._worker is not None
    node._worker.generation = 2  # reconnected: the broker redelivers 1 and 2
    node._ack_later(1, 1)
    node._ack(1, 2)
    assert channel.acks == []


class Calc:
    name = "calc"

    def add(self, a: int, b: int) -> int:
        return a + b

    add.__exposed__ = True  # type: ignore[attr-defined]


def test_method_signatures_are_read_again_when_a_method_is_replaced() -> None:
    services = ServiceTable("isc")
    calc = Calc()
    services.register(calc)
    assert services.method("calc", "add", (1, 2), {})(1, 2) == 3

    def add(a: int, b: int, c: int) -> int:
        return a + b + c

    add.__exposed__ = True  # type: ignore[attr-defined]
    calc.add = add  # type: ignore[method-assign]
    assert services.method("calc", "add", (1, 2, 3), {})(1, 2, 3) == 6
    with pytest.raises(MethodError, match="Wrong arguments"):
        services.method("calc", "add", (1, 2), {})


@pytest.mark.parametrize(
    ("args", "kwargs", "bound"),
    [
        ((1,), {}, [1, 0, 0]),
        ((1, 2), {}, [1, 2, 0]),
        ((1, 2, 3), {}, [1, 2, 3]),
        ((), {}, None),
        ((1, 2, 3, 4), {}, None),
        ((1,), {"b": 2}, [1, 2, 0]),
        ((1,), {"x": 2}, None),
        ((), {"a": 1}, [1, 0, 0]),
        ((1,), {"c": 3}, [1, 0, 3]),
    ],
)
def test_arguments_are_checked_with_and_without_keywords(
    args: tuple[int, ...], kwargs: dict[str, int], bound: list[int] | None
) -> None:
    """Arguments that fit get the service's own method (each lands in its parameter); the
    others are refused before the method runs."""
    ran: list[list[int]] = []

    class Svc:
        name = "svc"

        @expose
        def m(self, a: int, b: int = 0, c: int = 0) -> list[int]:
            ran.append([a, b, c])
            return [a, b, c]

    service = Svc()
    services = ServiceTable("isc")
    services.register(service)
    if bound is not None:
        method = services.method("svc", "m", args, kwargs)
        assert method == service.m
        assert method(*args, **kwargs) == bound
        assert ran == [bound]
    else:
        with pytest.raises(MethodError, match="Wrong arguments") as refused:
            services.method("svc", "m", args, kwargs)
        assert refused.value.known_method
        assert refused.value.type_name == "TypeError"
        assert ran == []


def test_required_keyword_only_and_varargs_are_checked() -> None:
    class Svc:
        name = "svc"

        @expose
        def kw(self, *, token: str) -> str:
            return token

        @expose
        def many(self, first: int, *rest: int) -> int:
            return first + sum(rest)

    services = ServiceTable("isc")
    services.register(Svc())
    with pytest.raises(MethodError, match="Wrong arguments"):
        services.method("svc", "kw", (), {})
    assert services.method("svc", "kw", (), {"token": "t"})(token="t") == "t"
    assert services.method("svc", "many", (1, 2, 3, 4), {})(1, 2, 3, 4) == 10
    with pytest.raises(MethodError, match="Wrong arguments"):
        services.method("svc", "many", (), {})


def test_a_held_lease_or_running_notification_is_never_covered_by_a_multiple_ack() -> None:
    node, channel = node_with_deliveries(2, 4)
    node._track(1)  # e.g. a cluster timer's lease, held unacked as long as the node ticks
    node._track(3)  # e.g. a service-mode notification whose listener runs
    node._ack_later(1, 2)
    node._ack_later(1, 4)
    node._flush_acks()
    assert sorted(channel.acks) == [(2, False), (4, False)]
