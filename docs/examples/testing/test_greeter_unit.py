"""Unit test of a service whose client is a module global: swap it for a FakeClient."""

import greeter
import pytest

from isc.client.testing import FakeClient
from isc.server.testing import ServiceHarness


@pytest.fixture
def client(monkeypatch):
    fake = FakeClient()
    monkeypatch.setattr(greeter, "client", fake)
    return fake


def test_greet_looks_the_user_up(client):
    client.answer("users", "get_user", {"username": "Andrew"})
    service = ServiceHarness(greeter.GreeterService())
    assert service.call("greet", 1) == "Hello, Andrew!"
    assert client.calls_to("users", "get_user") == [("users", "get_user", (1,), {})]
    assert client.notifications == [("greeted", ("Andrew",), {})]
