"""Integration tests: the service in a real node, over a real (throwaway) broker."""

import pytest
from inventory import InventoryService

from isc.client import Client, RemoteException
from isc.client.testing import wait_for
from isc.server import Node, expose, on
from isc.server.testing import running_node


class PricesService:
    """A stand-in for the real prices service, served by the same node."""

    name = "prices"

    @expose
    def get_price(self, item):
        return {"apple": 0.5}[item]


class SoldOutWatcher:
    """Collects the out_of_stock notifications the broker delivers."""

    name = "watcher"

    def __init__(self):
        self.sold_out = []

    @on("out_of_stock")
    def record(self, item):
        self.sold_out.append(item)


@pytest.fixture
def client(isc_amqp_url, isc_exchange):
    with Client(isc_amqp_url, exchange=isc_exchange) as client:
        yield client


@pytest.fixture
def watcher():
    return SoldOutWatcher()


@pytest.fixture
def node(isc_amqp_url, isc_exchange, client, watcher):
    node = Node(url=isc_amqp_url, exchange=isc_exchange)
    node.register_service(InventoryService(client))
    node.register_service(PricesService())
    node.register_service(watcher)
    with running_node(node):
        yield node


def test_reserve_over_the_broker(node, client, watcher):
    assert client.inventory.add("apple", 2) == 2
    assert client.inventory.reserve("apple", 2) == 1.0
    wait_for(lambda: watcher.sold_out == ["apple"], timeout=10, message="out_of_stock")

    with pytest.raises(RemoteException) as error:
        client.inventory.reserve("apple")
    assert error.value.remote_type == "inventory.OutOfStock"


def test_a_missing_price_fails_the_reservation(node, client):
    client.inventory.add("pear")
    with pytest.raises(RemoteException) as error:
        client.inventory.reserve("pear")
    # the prices service raised KeyError; inventory let the RemoteException through,
    # so the caller sees the original type and the calls it came through
    assert error.value.remote_type == "KeyError"
    assert error.value.remote_chain == ("prices.get_price", "inventory.reserve")
    assert client.inventory.add("pear") == 2  # nothing was taken out
