"""isc.client.testing.FakeClient: canned answers and recorded calls, without a broker."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest

from isc.client import Client, FutureResult
from isc.client.testing import FakeClient, RecordedCall, RecordedNotification
from isc.core import (
    ClientClosedError,
    ConfigurationError,
    EncodeError,
    JSONCodec,
    MessageTooLargeError,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
)


def test_calls_get_the_canned_answer_every_way_a_client_calls() -> None:
    fake = FakeClient()
    fake.answer("users", "get_user", {"username": "Andrew"})
    assert isinstance(fake, Client)
    assert fake.users.get_user(1) == {"username": "Andrew"}
    assert fake.invoke("users", "get_user", 2) == {"username": "Andrew"}
    assert fake.users.get_user.with_timeout(1)(id=3) == {"username": "Andrew"}
    future = fake.users.get_user.call_async(4)
    assert isinstance(future, FutureResult)
    assert future.wait(0)
    assert future.value == {"username": "Andrew"}
    assert fake.calls == [
        RecordedCall("users", "get_user", (1,), {}),
        RecordedCall("users", "get_user", (2,), {}),
        RecordedCall("users", "get_user", (), {"id": 3}),
        RecordedCall("users", "get_user", (4,), {}),
    ]


def test_a_callable_answer_computes_the_result_from_the_arguments() -> None:
    fake = FakeClient()
    fake.answer("calc", "add", lambda a, b: a + b)
    fake.answer("calc", "now", datetime.date(2026, 1, 2))
    assert fake.calc.add(2, 3) == 5
    assert fake.calc.now() == datetime.date(2026, 1, 2)  # typed JSON keeps dates
    assert fake.calls_to("calc", "add") == [("calc", "add", (2, 3), {})]
    assert len(fake.calls_to("calc")) == 2


def test_exceptions_reach_the_caller_as_from_a_node() -> None:
    fake = FakeClient()
    fake.answer("users", "get_user", lambda id: {1: "Andrew"}[id])
    with pytest.raises(RemoteException) as caught:
        fake.users.get_user(2)
    assert str(caught.value) == "2"
    assert caught.value.remote_type == "KeyError"
    gone = RemoteException("user was deleted", remote_type="app.errors.Gone")

    def slow() -> None:
        raise TimeoutException("no reply")

    def deleted() -> None:
        raise gone

    fake.answer("users", "slow", slow)
    fake.answer("users", "deleted", deleted)
    with pytest.raises(TimeoutException, match="no reply"):
        fake.users.slow()
    with pytest.raises(RemoteException) as caught:
        fake.users.deleted()
    assert caught.value is gone  # isc errors pass as they are


def test_a_call_without_an_answer_says_how_to_give_one() -> None:
    fake = FakeClient()
    with pytest.raises(
        ServiceNotFoundError,
        match=r"no answer for users\.get_user: give one with "
        r"fake\.answer\('users', 'get_user', result\)",
    ):
        fake.users.get_user(1)
    assert fake.calls == [("users", "get_user", (1,), {})]


def test_values_travel_through_the_codec() -> None:
    fake = FakeClient()
    fake.answer("calc", "echo", lambda *args: list(args))
    assert fake.calc.echo((1, 2)) == [[1, 2]]
    assert fake.calls[-1].args == ([1, 2],)  # what the service would receive
    with pytest.raises(EncodeError):
        fake.calc.echo(object())
    fake.answer("calc", "bad", object())
    with pytest.raises(RemoteException) as caught:
        fake.calc.bad()
    assert caught.value.remote_type == "isc.core.errors.EncodeError"
    plain = FakeClient(codec=JSONCodec())
    plain.answer("calc", "echo", lambda *args: list(args))
    with pytest.raises(EncodeError, match="json"):
        plain.calc.echo(datetime.date(2026, 1, 2))


def test_the_clients_size_limit_applies() -> None:
    fake = FakeClient(max_message_size=200)
    fake.answer("calc", "echo", lambda text: text)
    assert fake.calc.echo("x" * 10) == "x" * 10
    with pytest.raises(MessageTooLargeError, match="over this client's max_message_size"):
        fake.calc.echo("x" * 300)
    with pytest.raises(MessageTooLargeError):
        fake.notify("big", "x" * 300)
    assert len(fake.calls) == 1
    assert fake.notifications == []


def test_notifications_are_recorded_as_listeners_would_receive_them() -> None:
    fake = FakeClient()
    fake.notify("new_message", "Andrew", ("Hello", "!"))
    fake.notify("ping", when=1)
    assert fake.notifications == [
        RecordedNotification("new_message", ("Andrew", ["Hello", "!"]), {}),
        RecordedNotification("ping", (), {"when": 1}),
    ]
    with pytest.raises(ConfigurationError, match="event must be a non-empty string"):
        fake.notify("")
    with pytest.raises(EncodeError):
        fake.notify("x", object())
    assert len(fake.notifications) == 2


def test_names_and_timeouts_are_checked_as_by_a_client() -> None:
    fake = FakeClient(exchange="shop")
    with pytest.raises(ConfigurationError):
        fake.answer("", "get_user", 1)
    with pytest.raises(ConfigurationError, match="method must be a non-empty string"):
        fake.answer("users", "", 1)
    fake.answer("users", "get_user", 1)
    with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
        fake.call("users", "get_user", timeout=0)
    assert fake.calls == []


def test_a_stopped_fake_refuses_calls_like_a_stopped_client() -> None:
    with FakeClient() as fake:
        fake.answer("users", "get_user", 1)
        assert fake.is_connected
        assert fake.wait_connected(0)
        assert fake.users.get_user() == 1
    assert not fake.is_connected
    with pytest.raises(ClientClosedError):
        fake.users.get_user()
    with pytest.raises(ClientClosedError):
        fake.notify("x", 1)
    assert repr(fake) == "<isc FakeClient exchange='isc' 1 call(s) 0 notification(s)>"


def test_importing_the_testing_helpers_needs_neither_pytest_nor_gevent() -> None:
    probe = (
        "import sys, isc.client.testing; "
        "assert 'pytest' not in sys.modules, 'isc.client.testing imported pytest'; "
        "assert 'gevent' not in sys.modules, 'isc.client.testing imported gevent'"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
