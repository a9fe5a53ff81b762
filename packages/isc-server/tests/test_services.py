"""Decorators, service discovery, method lookup and argument checks (no broker)."""

from __future__ import annotations

from typing import Any

import pytest

from isc.core import ConfigurationError
from isc.server import Node, cluster_timer, expose, local_timer, on
from isc.server._services import MethodError, ServiceTable


class Users:
    name = "users"

    @expose
    def get_user(self, id: int) -> str:
        return f"user {id}"

    @expose
    def _hidden_but_exposed(self) -> str:
        return "ok"

    def private_method(self) -> str:
        return "no"

    @on("new_message")
    @on("new_user")
    def on_event(self, *args: Any) -> None:
        pass

    @on("new_message")
    def second_listener(self, username: str, message: str) -> None:
        pass

    @local_timer(timeout=5)
    def tick(self) -> None:
        pass

    @property
    def broken(self) -> None:
        raise RuntimeError("a property that raises must not break discovery")


def table() -> ServiceTable:
    services = ServiceTable("isc")
    services.register(Users())
    return services


def test_decorators_mark_methods_as_isclib_1_did() -> None:
    assert Users.get_user.__exposed__ is True  # type: ignore[attr-defined]
    assert Users.on_event.__on__ == {"new_message", "new_user"}  # type: ignore[attr-defined]
    assert Users.tick.__timeouts__ == {5.0}  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [0, -1, "5", True])
def test_local_timer_needs_a_positive_period(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="positive timeout"):
        local_timer(timeout=bad)


def test_on_needs_event_names() -> None:
    with pytest.raises(ConfigurationError, match="event names"):
        on()
    with pytest.raises(ConfigurationError):
        on("")


def test_register_rejects_duplicates_and_nameless_objects() -> None:
    services = table()
    with pytest.raises(ConfigurationError, match="Service users is already registered"):
        services.register(Users())
    with pytest.raises(ConfigurationError, match="has no 'name' attribute"):
        services.register(object())


def test_method_lookup_applies_the_rules() -> None:
    services = table()
    assert services.method("users", "get_user", (1,), {})(1) == "user 1"
    assert services.method("users", "_hidden_but_exposed", (), {})() == "ok"
    with pytest.raises(MethodError, match="not allowed to call unexposed method private") as e:
        services.method("users", "private_method", (), {})
    assert e.value.type_name == "PermissionError"
    with pytest.raises(MethodError, match="Could not find method nope"):
        services.method("users", "nope", (), {})
    with pytest.raises(MethodError, match=r"Wrong arguments for users\.get_user\(id: 'int'\)"):
        services.method("users", "get_user", (1, 2), {})
    with pytest.raises(MethodError, match="unexpected keyword argument 'x'"):
        services.method("users", "get_user", (1,), {"x": 1})
    with pytest.raises(MethodError, match="Service other is not hosted here"):
        services.method("other", "get_user", (), {})


def test_inspect_describes_the_service() -> None:
    services = table()
    described = services.method("users", "_inspect", (), {})()
    assert described == {
        "exposed": {
            "_hidden_but_exposed": "() -> 'str'",
            "get_user": "(id: 'int') -> 'str'",
        },
        "listeners": {"on_event": ["new_message", "new_user"], "second_listener": ["new_message"]},
        "listener_modes": {
            "on_event": {"new_message": "broadcast", "new_user": "broadcast"},
            "second_listener": {"new_message": "broadcast"},
        },
        "timers": {"tick": [{"timeout": 5.0, "scope": "local"}]},
    }


class Orders:
    name = "orders"

    @on("paid", mode="service", retries=5)
    @on("shipped", mode="service")
    def record(self, *args: Any) -> None:
        pass

    @on("paid")
    def log(self, *args: Any) -> None:
        pass

    @cluster_timer(timeout=2)
    @local_timer(timeout=1)
    def sweep(self) -> None:
        pass


def test_service_mode_listeners_and_cluster_timers_are_found_apart() -> None:
    services = ServiceTable("isc")
    services.register(Orders())
    assert {event: [fn.__name__ for fn in fns] for event, fns in services.listeners().items()} == {
        "paid": ["log"]
    }
    found = [(s.service, s.method, s.event, s.retries) for s in services.service_listeners()]
    assert found == [("orders", "record", "paid", 5), ("orders", "record", "shipped", 3)]
    assert [(p, name) for p, name, _fn in services.timers()] == [(1.0, "orders.sweep")]
    assert [(p, name) for p, name, _fn in services.cluster_timers()] == [(2.0, "orders.sweep")]
    described = services.inspect("orders")
    assert described["listener_modes"] == {
        "log": {"paid": "broadcast"},
        "record": {"paid": "service", "shipped": "service"},
    }
    assert described["timers"] == {
        "sweep": [{"timeout": 1.0, "scope": "local"}, {"timeout": 2.0, "scope": "cluster"}]
    }


def test_on_checks_its_mode_and_retries() -> None:
    with pytest.raises(ConfigurationError, match="mode must be one of broadcast, service"):
        on("x", mode="once")
    for bad in (-1, True, 1.5):
        with pytest.raises(ConfigurationError, match="retries must be an int >= 0"):
            on("x", mode="service", retries=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="listens for 'x' in mode 'broadcast' already"):

        @on("x", mode="service")
        @on("x")
        def both(self: Any) -> None:
            pass


def test_cluster_timer_needs_a_positive_period_and_one_per_method() -> None:
    with pytest.raises(ConfigurationError, match="@cluster_timer needs a positive timeout"):
        cluster_timer(timeout=0)
    with pytest.raises(ConfigurationError, match="has a @cluster_timer already"):

        @cluster_timer(timeout=1)
        @cluster_timer(timeout=2)
        def twice(self: Any) -> None:
            pass


def test_inspect_adds_the_metrics_of_the_node() -> None:
    node = Node(url="amqp://guest:guest@127.0.0.1:1/", exchange="x")
    node.register_service(Users())
    node.metrics.method("users", "get_user").observe(0.01)
    described = node._services.method("users", "_inspect", (), {})()
    assert set(described) == {"exposed", "listeners", "listener_modes", "timers", "metrics"}
    assert described["metrics"]["methods"]["get_user"]["calls"] == 1


class Database:
    name = "db"

    @expose
    def connect(
        self,
        dsn: str = "postgres://admin:hunter2@db.internal/app",
        /,
        *tables: str,
        region: str,
        api_key: str = "sk_live_0123456789",
        retries: int = 3,
        **options: Any,
    ) -> None:
        pass


def test_signatures_never_show_default_values() -> None:
    services = ServiceTable("isc")
    services.register(Database())
    shown = "(dsn: 'str' = ..., /, *tables: 'str', region: 'str', api_key: 'str' = ..., "
    shown += "retries: 'int' = ..., "
    shown += "**options: 'Any') -> 'None'"
    assert services.method("db", "_inspect", (), {})()["exposed"] == {"connect": shown}
    with pytest.raises(MethodError) as refused:  # "Wrong arguments" replies and log lines
        services.method("db", "connect", (), {"nope": 1})  # region is missing
    assert str(refused.value).startswith(f"Wrong arguments for db.connect{shown}: ")
    for secret in ("hunter2", "sk_live", "= 3"):
        assert secret not in str(refused.value)


def test_a_node_can_turn_inspect_off() -> None:
    node = Node(url="amqp://guest:guest@127.0.0.1:1/", exchange="x", allow_inspect=False)
    node.register_service(Users())
    with pytest.raises(MethodError, match="_inspect is turned off on this node") as refused:
        node._services.method("users", "_inspect", (), {})
    assert refused.value.type_name == "PermissionError"
    assert node._services.method("users", "get_user", (1,), {})(1) == "user 1"


def test_refusals_say_whether_the_method_exists() -> None:
    services = table()
    with pytest.raises(MethodError) as info:
        services.method("users", "get_user", (), {})
    assert info.value.known_method
    for name in ("nope", "private_method"):
        with pytest.raises(MethodError) as info:
            services.method("users", name, (), {})
        assert not info.value.known_method


def test_listeners_and_timers_are_discovered() -> None:
    services = table()
    listeners = services.listeners()
    assert sorted(listeners) == ["new_message", "new_user"]
    assert [fn.__name__ for fn in listeners["new_message"]] == ["on_event", "second_listener"]
    assert [(period, name) for period, name, _ in services.timers()] == [(5.0, "users.tick")]


def test_node_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="thread_pool_size"):
        Node(thread_pool_size=0)
    node = Node(url="amqp://guest:guest@127.0.0.1:1/", exchange="x")
    node.register_service(Users())
    with pytest.raises(ConfigurationError, match="Service users is already registered"):
        node.register_service(Users())
    with pytest.raises(ConfigurationError, match="unknown hook"):
        node.add_hook("before")
    assert "pickle" not in node.codecs.names
    assert node.codecs.knows("pickle")  # known, so callers get a clear refusal
    assert "pickle" in Node(allow_pickle=True).codecs.names

    @node.add_hook("pre_call")
    def hook(method: str, args: Any, kwargs: Any) -> None:
        pass

    assert node.hooks["pre_call"] == [hook]


def test_queue_type_and_message_size_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="queue_type must be one of auto, legacy, durable"):
        Node(queue_type="classic")
    with pytest.raises(ConfigurationError, match="max_message_size"):
        Node(max_message_size=0)
    assert Node(max_message_size=None).max_message_size is None


class BrokerError(Exception):
    """Shaped like pika's ChannelClosedByBroker."""

    def __init__(self, reply_code: int, reply_text: str) -> None:
        super().__init__(reply_code, reply_text)
        self.reply_code = reply_code
        self.reply_text = reply_text


def test_a_queue_declared_otherwise_is_declared_passively_until_it_is_gone() -> None:
    node = Node(exchange="x", queue_type="quorum")
    node.register_service(Users())
    queue = "x_service_users"
    node._on_channel_error(BrokerError(406, f"PRECONDITION_FAILED - bad arg for queue '{queue}'"))
    assert node._passive_queues == {queue}
    node._on_channel_error(BrokerError(406, "PRECONDITION_FAILED - queue 'other' in vhost"))
    assert node._passive_queues == {queue}  # not one of this node's queues
    node._on_channel_error(BrokerError(404, f"NOT_FOUND - no queue '{queue}' in vhost '/'"))
    assert node._passive_queues == set()


def test_legacy_constructor_builds_the_url_from_hostname() -> None:
    assert Node("broker.example").url == "amqp://guest:guest@broker.example/"


class Ticker:
    name = "ticker"

    def __init__(self) -> None:
        self.ticks = 0

    @local_timer(timeout=0.02)
    def tick(self) -> None:
        self.ticks += 1
        if self.ticks == 1:
            raise RuntimeError("the first tick fails; the timer must go on")


def test_timers_tick_without_a_broker_and_stop_with_the_node() -> None:
    import gevent

    node = Node(url="amqp://guest:guest@127.0.0.1:1/", exchange="x", drain_timeout=1)
    ticker = Ticker()
    node.register_service(ticker)
    runner = gevent.spawn(node.run)
    with gevent.Timeout(5):
        while ticker.ticks < 3:  # a failing first tick did not stop it
            gevent.sleep(0.01)
    node.stop()
    runner.join(5)
    assert runner.dead
    assert node._timers
    assert all(timer.dead for timer in node._timers)
    assert not node.wait_for_ready(0)
    ticks = node.metrics.snapshot("ticker")["timers"]["tick"]
    assert ticks["calls"] == ticker.ticks
    assert ticks["errors"] == 1
