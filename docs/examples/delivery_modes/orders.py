"""Delivery modes: a broadcast and a service-mode listener of one event, and both timers."""

from isc.server import cluster_timer, expose, local_timer, on


class Orders:
    name = "orders"

    def __init__(self):
        self.cache = {}
        self.charged = []
        self.refunded = []
        self.digests = 0

    @on("order.placed")  # broadcast: every running node (isclib 1.x's behaviour)
    def warm_cache(self, order):
        self.cache[order["id"]] = order

    @on("order.placed", mode="service")  # once per service, even if no node ran when sent
    def charge(self, order):
        self.charged.append(order["id"])

    @on("order.refunded", mode="service", retries=5)  # then dead-lettered
    def refund(self, order):
        self.refunded.append(order["id"])

    @local_timer(timeout=60)  # every node, each on its own clock
    def trim_local_cache(self):
        self.cache.clear()

    @cluster_timer(timeout=60)  # one node of the service, once a minute
    def send_digest(self):
        self.digests += 1

    @expose
    def report(self):
        return {"charged": self.charged, "refunded": self.refunded, "digests": self.digests}
