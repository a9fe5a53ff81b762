"""isc.server.testing: ServiceHarness answers as a node does, without a broker."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from isc.client.testing import FakeClient
from isc.core import (
    CodecNotAllowedError,
    ConfigurationError,
    EncodeError,
    JSONCodec,
    PickleCodec,
    RemoteException,
)
from isc.server import Node, expose, local_timer, on
from isc.server.testing import ServiceHarness, running_node


class OutOfStock(Exception):
    """A service's own exception type (module-qualified on the wire)."""


class Shop:
    name = "shop"

    def __init__(self, client: Any = None) -> None:
        self.client = client
        self.stock = {"apple": 2}
        self.heard: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.ticks = 0

    @expose
    def count(self, item: str) -> int:
        return self.stock.get(item, 0)

    @expose
    def echo(self, *args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    @expose
    def take(self, item: str, n: int = 1) -> int:
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        if self.stock.get(item, 0) < n:
            raise OutOfStock(item)
        self.stock[item] -= n
        return self.stock[item]

    @expose
    def repeat(self, text: str, times: int) -> str:
        return text * times

    @expose
    def unencodable(self) -> object:
        return object()

    @expose
    def price_in_cents(self, item: str) -> int:
        euros = self.client.prices.get_price(item)
        self.client.notify("priced", item, euros)
        return int(euros * 100)

    def restock(self) -> None:
        """Not exposed: a client may not call it."""
        self.stock["apple"] = 100

    @on("sold", "given_away")
    def first_listener(self, item: str, n: int = 1) -> None:
        self.heard.append(("first", (item, n), {}))

    @on("sold")
    def second_listener(self, *args: Any, **kwargs: Any) -> None:
        self.heard.append(("second", args, kwargs))

    @on("broken")
    def failing_listener(self, *args: Any) -> None:
        raise RuntimeError("the listener failed")

    @on("broken")
    def listener_after_the_failing_one(self, *args: Any) -> None:
        self.heard.append(("after", args, {}))

    @local_timer(timeout=30)
    def tick(self) -> None:
        self.ticks += 1

    @local_timer(timeout=60)
    def failing_tick(self) -> None:
        raise RuntimeError("the tick failed")


@pytest.fixture
def shop() -> ServiceHarness:
    return ServiceHarness(Shop())


def remote_error(harness: ServiceHarness, method: str, *args: Any, **kwargs: Any) -> Any:
    with pytest.raises(RemoteException) as caught:
        harness.call(method, *args, **kwargs)
    return caught.value


def test_call_returns_what_a_client_would_receive(shop: ServiceHarness) -> None:
    assert shop.call("count", "apple") == 2
    assert shop.call("take", "apple", n=2) == 0
    assert shop.service.stock["apple"] == 0  # type: ignore[attr-defined]
    # through the codec: a tuple arrives as a list, a date stays a date (typed JSON)
    day = datetime.date(2026, 1, 2)
    assert shop.call("echo", (1, 2), day=day) == [[[1, 2]], {"day": day}]
    # the harness's own parameter names are free for the service's keyword arguments
    assert shop.call("echo", method="m", event="e") == [[], {"method": "m", "event": "e"}]


def test_private_and_missing_methods_fail_as_on_a_node(shop: ServiceHarness) -> None:
    private = remote_error(shop, "restock")
    assert str(private) == "You are not allowed to call unexposed method restock."
    assert private.remote_type == "PermissionError"
    assert shop.service.stock["apple"] == 2  # type: ignore[attr-defined]
    missing = remote_error(shop, "nope")
    assert str(missing) == "Could not find method nope."
    assert missing.remote_type == "AttributeError"


def test_wrong_arguments_fail_before_the_method_runs(shop: ServiceHarness) -> None:
    error = remote_error(shop, "take", "apple", 1, 2)
    assert str(error).startswith("Wrong arguments for shop.take(item: 'str', n: 'int' = ...)")
    assert error.remote_type == "TypeError"
    error = remote_error(shop, "count", item="apple", colour="red")
    assert "unexpected keyword argument 'colour'" in str(error)
    assert shop.service.stock == {"apple": 2}  # type: ignore[attr-defined]


def test_exceptions_raised_by_the_method_keep_their_type_name(shop: ServiceHarness) -> None:
    error = remote_error(shop, "take", "apple", 0)
    assert str(error) == "n must be positive, got 0"
    assert error.remote_type == "ValueError"
    error = remote_error(shop, "take", "pear")
    assert str(error) == "pear"
    assert error.remote_type == f"{__name__}.OutOfStock"


def test_a_result_the_codec_cannot_carry_fails_as_in_production(shop: ServiceHarness) -> None:
    error = remote_error(shop, "unencodable")
    assert "typedjson cannot encode" in str(error)
    assert error.remote_type == "isc.core.errors.EncodeError"
    # arguments fail on the caller's side, before anything is sent
    with pytest.raises(EncodeError, match="typedjson cannot encode"):
        shop.call("echo", object())
    # without the round trip, values pass as they are
    raw = ServiceHarness(Shop(), round_trip=False)
    assert type(raw.call("unencodable")) is object
    assert raw.call("echo", (1, 2)) == [[(1, 2)], {}]


def test_the_codec_is_chosen_by_the_test_and_accepted_as_by_a_node() -> None:
    day = datetime.date(2026, 1, 2)
    plain = ServiceHarness(Shop(), codec=JSONCodec())
    with pytest.raises(EncodeError, match="json"):
        plain.call("echo", day)  # plain JSON has no dates
    refused = remote_error(ServiceHarness(Shop(), codec=PickleCodec()), "count", "apple")
    assert refused.remote_type == "isc.core.errors.CodecNotAllowedError"
    pickled = ServiceHarness(Shop(), codec=PickleCodec(), allow_pickle=True)
    assert pickled.call("echo", (1, 2)) == [[(1, 2)], {}]  # pickle keeps tuples
    assert pickled.call("count", "apple") == 2
    with pytest.raises(CodecNotAllowedError):
        ServiceHarness(Shop(), codec=PickleCodec()).notify("sold", "apple")


def test_the_nodes_size_limit_applies_to_requests_and_replies() -> None:
    small = ServiceHarness(Shop(), max_message_size=300)
    assert small.call("repeat", "x", 10) == "x" * 10
    request = remote_error(small, "repeat", "x" * 400, 1)
    assert request.remote_type == "isc.core.errors.MessageTooLargeError"
    assert "the request is" in str(request)
    reply = remote_error(small, "repeat", "x", 400)
    assert reply.remote_type == "isc.core.errors.MessageTooLargeError"
    assert "the reply is" in str(reply)


def test_inspect_answers_as_on_a_node(shop: ServiceHarness) -> None:
    described = shop.call("_inspect")
    assert described["exposed"] == shop.exposed
    assert sorted(shop.exposed) == [
        "count",
        "echo",
        "price_in_cents",
        "repeat",
        "take",
        "unencodable",
    ]
    assert shop.exposed["take"] == "(item: 'str', n: 'int' = ...) -> 'int'"


def test_listings_name_events_and_timers(shop: ServiceHarness) -> None:
    assert shop.events == {
        "broken": ["failing_listener", "listener_after_the_failing_one"],
        "given_away": ["first_listener"],
        "sold": ["first_listener", "second_listener"],
    }
    assert shop.timers == {"failing_tick": 60.0, "tick": 30.0}


def test_notify_runs_every_handler_of_the_event(shop: ServiceHarness) -> None:
    assert shop.notify("sold", "apple", 2) == 2
    assert sorted(shop.service.heard) == [  # type: ignore[attr-defined]
        ("first", ("apple", 2), {}),
        ("second", ("apple", 2), {}),
    ]
    shop.service.heard.clear()  # type: ignore[attr-defined]
    assert shop.notify("given_away", item="pear") == 1
    assert shop.service.heard == [("first", ("pear", 1), {})]  # type: ignore[attr-defined]
    assert shop.notify("nobody_listens", 1) == 0


def test_notify_arguments_travel_through_the_codec(shop: ServiceHarness) -> None:
    shop.notify("sold", ("apple", "pear"), 1)
    assert ("second", (["apple", "pear"], 1), {}) in shop.service.heard  # type: ignore[attr-defined]
    with pytest.raises(EncodeError):
        shop.notify("sold", object())
    assert shop.service.heard[-1][1][0] == ["apple", "pear"]  # type: ignore[attr-defined]


def test_a_failing_handler_raises_after_the_others_ran(shop: ServiceHarness) -> None:
    with pytest.raises(RuntimeError, match="the listener failed"):
        shop.notify("broken", "x")
    assert shop.service.heard == [("after", ("x",), {})]  # type: ignore[attr-defined]


def test_fire_timer_runs_one_tick_with_the_hooks(shop: ServiceHarness) -> None:
    seen: list[tuple[str, Any]] = []
    shop.add_hook("pre_call", lambda method, args, kwargs: seen.append(("pre", method)))
    shop.add_hook("post_success", lambda method, a, k, result: seen.append(("ok", method)))
    shop.add_hook("post_error", lambda method, a, k, exc: seen.append(("error", str(exc))))
    shop.fire_timer("tick")
    shop.fire_timer("tick")
    assert shop.service.ticks == 2  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="the tick failed"):
        shop.fire_timer("failing_tick")
    assert seen == [
        ("pre", "tick"),
        ("ok", "tick"),
        ("pre", "tick"),
        ("ok", "tick"),
        ("pre", "failing_tick"),
        ("error", "the tick failed"),
    ]


def test_fire_timer_names_the_timers_when_the_method_is_not_one(shop: ServiceHarness) -> None:
    with pytest.raises(ConfigurationError, match=r"shop\.count is not a @local_timer") as e:
        shop.fire_timer("count")
    assert "failing_tick, tick" in str(e.value)


def test_call_hooks_see_arguments_results_and_errors(shop: ServiceHarness) -> None:
    seen: list[tuple[Any, ...]] = []

    @shop.add_hook("pre_call")
    def pre(method: str, args: Any, kwargs: Any) -> None:
        seen.append(("pre", method, args, kwargs))

    shop.add_hook("post_success", lambda m, a, k, result: seen.append(("ok", m, result)))
    shop.add_hook("post_error", lambda m, a, k, exc: seen.append(("error", m, type(exc))))
    shop.call("take", "apple", n=1)
    remote_error(shop, "take", "apple", 0)
    remote_error(shop, "restock")  # refused before the hooks, as on a node
    assert seen == [
        ("pre", "take", ("apple",), {"n": 1}),
        ("ok", "take", (None, 1)),
        ("pre", "take", ("apple", 0), {}),
        ("error", "take", ValueError),
    ]
    assert shop.node.hooks["pre_call"] == [pre]


def test_a_service_using_a_client_gets_a_fake_one() -> None:
    fake = FakeClient()
    fake.answer("prices", "get_price", lambda item: {"apple": 0.25}[item])
    shop = ServiceHarness(Shop(client=fake))
    assert shop.call("price_in_cents", "apple") == 25
    assert fake.calls_to("prices") == [("prices", "get_price", ("apple",), {})]
    assert fake.notifications == [("priced", ("apple", 0.25), {})]
    # the KeyError inside the fake's answer reaches the service as a RemoteException ...
    error = remote_error(shop, "price_in_cents", "pear")
    # ... which the service does not catch: its caller sees the original type and message,
    # and the calls the error came through
    assert error.remote_type == "KeyError"
    assert error.remote_chain == ("prices.get_price", "shop.price_in_cents")
    assert str(error) == "'pear'"


def test_service_names_are_checked_as_by_a_node() -> None:
    class Nameless:
        pass

    with pytest.raises(ConfigurationError, match="has no 'name' attribute"):
        ServiceHarness(Nameless())
    assert repr(ServiceHarness(Shop())) == "<ServiceHarness shop codec=typedjson>"


def test_running_node_says_when_the_node_cannot_start() -> None:
    node = Node(url="amqp://guest:secret@127.0.0.1:1/", exchange="x", drain_timeout=1)
    node.register_service(Shop())
    with pytest.raises(ConfigurationError) as caught:  # noqa: SIM117
        with running_node(node, ready_timeout=0.5):
            pytest.fail("the block must not run")
    message = str(caught.value)
    assert "did not start serving on amqp://guest:***@127.0.0.1:1/ within 0.5s" in message
    assert "refused" in message.lower()  # the connection error, from the node's worker
    assert not node.wait_for_ready(0)
