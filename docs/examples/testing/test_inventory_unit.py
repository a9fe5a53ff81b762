"""Unit tests: the service's methods, handlers and timer, without a broker."""

import pytest
from inventory import InventoryService

from isc.client import RemoteException
from isc.client.testing import FakeClient
from isc.server.testing import ServiceHarness


@pytest.fixture
def client():
    fake = FakeClient()
    fake.answer("prices", "get_price", lambda item: {"apple": 0.5, "pear": 0.75}[item])
    return fake


@pytest.fixture
def inventory(client):
    return ServiceHarness(InventoryService(client))


def test_add_counts_the_stock(inventory):
    assert inventory.call("add", "apple", 3) == 3
    assert inventory.call("add", "apple") == 4


def test_reserve_asks_for_the_price_and_notifies_when_sold_out(inventory, client):
    inventory.call("add", "apple", 2)
    assert inventory.call("reserve", "apple", count=2) == 1.0
    assert client.calls == [("prices", "get_price", ("apple",), {})]
    assert client.notifications == [("out_of_stock", ("apple",), {})]


def test_failures_reach_the_caller_as_remote_exceptions(inventory):
    with pytest.raises(RemoteException) as error:
        inventory.call("reserve", "pear")
    assert str(error.value) == "only 0 pear left"
    assert error.value.remote_type == "inventory.OutOfStock"

    with pytest.raises(RemoteException, match="count must be at least 1") as error:
        inventory.call("add", "apple", 0)
    assert error.value.remote_type == "ValueError"


def test_only_exposed_methods_with_fitting_arguments_run(inventory):
    with pytest.raises(RemoteException) as error:
        inventory.call("clear")
    assert error.value.remote_type == "PermissionError"

    with pytest.raises(RemoteException) as error:
        inventory.call("add", "apple", 1, "extra")
    assert error.value.remote_type == "TypeError"


def test_a_cancelled_order_puts_the_items_back(inventory):
    assert inventory.notify("order_cancelled", "pear", 2) == 1  # one handler ran
    assert inventory.call("add", "pear") == 3


def test_the_timer_reports_low_stock(inventory, client):
    inventory.call("add", "apple", 1)
    inventory.call("add", "pear", 5)
    inventory.fire_timer("report_low_stock")
    assert client.notifications == [("low_stock", (["apple"],), {})]
