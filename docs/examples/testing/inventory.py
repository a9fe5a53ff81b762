"""The service under test: a stock of items that asks a prices service and notifies."""

from __future__ import annotations

import os

from isc.client import Client
from isc.server import Node, expose, local_timer, on


class OutOfStock(Exception):
    """Not enough of an item left to reserve."""


class InventoryService:
    name = "inventory"

    def __init__(self, client: Client) -> None:
        self.client = client  # calls other services and notifies; a FakeClient in unit tests
        self.stock: dict[str, int] = {}

    @expose
    def add(self, item: str, count: int = 1) -> int:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self.stock[item] = self.stock.get(item, 0) + count
        return self.stock[item]

    @expose
    def reserve(self, item: str, count: int = 1) -> float:
        left = self.stock.get(item, 0)
        if left < count:
            raise OutOfStock(f"only {left} {item} left")
        unit_price = self.client.prices.get_price(item)
        self.stock[item] = left - count
        if self.stock[item] == 0:
            self.client.notify("out_of_stock", item)
        return unit_price * count

    @on("order_cancelled")
    def put_back(self, item: str, count: int) -> None:
        self.stock[item] = self.stock.get(item, 0) + count

    @local_timer(timeout=60)
    def report_low_stock(self) -> None:
        low = sorted(item for item, count in self.stock.items() if count < 3)
        if low:
            self.client.notify("low_stock", low)

    def clear(self) -> None:  # not exposed: no remote caller may empty the stock
        self.stock.clear()


if __name__ == "__main__":
    url = os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/")
    node = Node(url=url)
    node.register_service(InventoryService(Client(url)))
    node.run()
