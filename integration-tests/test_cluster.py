"""A real 3-member RabbitMQ cluster: clients and nodes given every member's URL fail over.

Three throwaway RabbitMQ nodes on this machine are joined into one cluster
(``isc.testing.RabbitMQCluster``; docs/development.md has the recipe). The service queue is a
quorum queue, replicated on every member. Marked ``cluster``: the tests run on one Python x
json only (they boot three brokers and stop members). Failover times are printed (``-s``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from isc.client import Client, IscError
from isc.core import service_queue_name
from isc.testing import RabbitMQCluster, RabbitMQNode
from isc_testing import wait_for
from isc_testing.broker import unique_exchange_name
from isc_testing.nodes import NodeProcess

pytestmark = [pytest.mark.cluster, pytest.mark.codec_independent]

#: Service queues are replicated on every member.
QUORUM = ["--queue-type", "quorum"]
#: How soon calls must succeed again after a member stops.
FAILOVER_BOUND = 5.0


@pytest.fixture(scope="session")
def cluster() -> Iterator[RabbitMQCluster]:
    """The cluster, booted on first use (by the one test below)."""
    if not RabbitMQNode.available():
        pytest.skip("needs rabbitmq-server installed")
    started = time.monotonic()
    with RabbitMQCluster.launch() as booted:
        print(
            f"\ncluster: 3 members joined {time.monotonic() - started:.1f}s after spawn, "
            f"{booted.rss_bytes() / 2**20:.0f} MB RSS"
        )
        yield booted


def _answers(client: Client) -> bool:
    try:
        return bool(client.calc.add.with_timeout(1)(1, 1) == 2)
    except IscError:
        return False


def _member_of(cluster: RabbitMQCluster, client: Client) -> RabbitMQNode:
    worker = client._worker
    assert worker is not None
    assert worker.ready.is_set()
    url = worker.url  # type: ignore[attr-defined]
    return next(m for m in cluster.members if m.amqp_url == url)


def _failover(client: Client, member: RabbitMQNode) -> float:
    started = time.monotonic()
    member.stop()
    wait_for(lambda: _answers(client), timeout=FAILOVER_BOUND, message="calls to succeed")
    return time.monotonic() - started


# One test function: pytest-xdist may run the tests of a module on different workers, and
# each would boot a cluster of its own.
def test_a_cluster_serves_through_the_loss_of_members(cluster: RabbitMQCluster) -> None:
    _clients_spread_over_the_members(cluster)
    _calls_succeed_again_when_the_clients_member_stops(cluster)
    for member in cluster.members:
        if not member.running:
            member.start()
    _calls_succeed_again_when_the_quorum_leader_stops(cluster)


def _clients_spread_over_the_members(cluster: RabbitMQCluster) -> None:
    clients = [Client(cluster.amqp_urls) for _ in range(3)]
    try:
        for client in clients:
            assert client.wait_connected(10)
        assert {_member_of(cluster, c).nodename for c in clients} == {
            m.nodename for m in cluster.members
        }
    finally:
        for client in clients:
            client.stop()


def _calls_succeed_again_when_the_clients_member_stops(cluster: RabbitMQCluster) -> None:
    exchange = unique_exchange_name()
    urls = ",".join(cluster.amqp_urls)
    with (
        NodeProcess.serve(urls, exchange, "calc:Calc", "calc:Events", extra=QUORUM),
        Client(cluster.amqp_urls, exchange=exchange, invoke_timeout=5) as client,
    ):
        assert client.calc.add(1, 2) == 3
        for i in range(50):
            client.notify("bang", i)
        assert client.flush(10)
        lost = _member_of(cluster, client)
        took = _failover(client, lost)
        print(f"\nclient's member stopped: calls succeed again after {took:.2f}s")
        assert _member_of(cluster, client) is not lost
        for i in range(50, 100):
            client.notify("bang", i)
        assert client.flush(10)

        def received() -> set[int]:
            return {args[0] for args, _kwargs in client.events.get_received()}

        # confirmed notifications all reach the node (it may have lost its member too)
        wait_for(lambda: received() >= set(range(50, 100)), timeout=10, message="notifications")


def _calls_succeed_again_when_the_quorum_leader_stops(cluster: RabbitMQCluster) -> None:
    exchange = unique_exchange_name()
    urls = ",".join(cluster.amqp_urls)
    queue = service_queue_name(exchange, "calc")
    with (
        NodeProcess.serve(urls, exchange, "calc:Calc", extra=QUORUM),
        Client(cluster.amqp_urls, exchange=exchange, invoke_timeout=5) as client,
    ):
        assert client.calc.add(1, 2) == 3
        listing = cluster.ctl(cluster.members[0], "list_queues", "-q", "name", "leader")
        fields = [line.split() for line in listing.splitlines()]
        leaders = {f[0]: f[1] for f in fields if len(f) == 2}  # classic queues have none
        leader = cluster.member_named(leaders[queue])
        took = _failover(client, leader)
        print(f"\nquorum leader stopped: calls succeed again after {took:.2f}s")
