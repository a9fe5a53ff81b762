"""Several broker URLs, and what happens under a node when the broker cancels its consumers.

Several URLs are played by TCP proxies in front of the run's broker (the real 3-node cluster
is in test_cluster.py): a client or node given several URLs connects through one and fails
over to another when its connection is lost and that proxy is gone. docs/cluster.md states
the behaviour these tests hold the library to.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pika
import pytest

from isc.client import Client, IscError
from isc.core import service_queue_name
from isc_testing import TcpProxy, wait_for
from isc_testing.nodes import NodeProcess

pytestmark = [pytest.mark.fault, pytest.mark.codec_independent]


@pytest.fixture
def proxies(amqp_url: str) -> Iterator[list[TcpProxy]]:
    """Three proxies to the run's broker: three "members" that can be lost one by one."""
    opened = [TcpProxy.for_url(amqp_url) for _ in range(3)]
    try:
        yield opened
    finally:
        for proxy in opened:
            proxy.close()


def _urls(proxies: list[TcpProxy]) -> list[str]:
    urls = [proxy.url for proxy in proxies]
    assert all(url is not None for url in urls)
    return [url for url in urls if url is not None]


def _answers(client: Client) -> bool:
    try:
        return bool(client.calc.add.with_timeout(1)(1, 1) == 2)
    except IscError:
        return False


def test_a_client_given_several_urls_skips_the_dead_ones(
    amqp_url: str, exchange: str, proxies: list[TcpProxy]
) -> None:
    dead = proxies[0].url
    proxies[0].close()  # refuses connections from now on
    urls = _urls(proxies[1:])
    assert dead is not None
    for _ in range(3):  # wherever each client starts, it ends up on a live one
        with Client([dead, *urls], exchange=exchange) as client:
            assert client.wait_connected(5)


def test_clients_of_one_process_spread_over_the_urls(
    amqp_url: str, exchange: str, proxies: list[TcpProxy]
) -> None:
    urls = _urls(proxies)
    clients = [Client(urls, exchange=exchange) for _ in range(3)]
    try:
        for client in clients:
            assert client.wait_connected(5)
        assert [proxy.active_connections for proxy in proxies] == [1, 1, 1]
    finally:
        for client in clients:
            client.stop()


def test_a_client_and_a_node_fail_over_when_their_member_goes(
    amqp_url: str, exchange: str, proxies: list[TcpProxy]
) -> None:
    urls = ",".join(_urls(proxies))
    with (
        NodeProcess.serve(urls, exchange, "calc:Calc"),
        Client(urls, exchange=exchange, invoke_timeout=5) as client,
    ):
        assert client.calc.add(1, 2) == 3
        members = list(proxies)
        for _ in range(2):  # lose a member carrying a connection, twice
            lost = next(proxy for proxy in members if proxy.active_connections)
            members.remove(lost)
            started = time.monotonic()
            lost.close()  # its connections reset; it refuses new ones
            wait_for(lambda: _answers(client), timeout=5, message="calls to succeed again")
            print(f"\nfailover: calls succeed {time.monotonic() - started:.2f}s after a loss")
        # the node and the client both went on to the last member left
        wait_for(lambda: members[0].active_connections == 2, timeout=5, message="both to move")
        assert client.calc.add(2, 2) == 4


def _delete_queue(url: str, queue: str) -> None:
    """Delete ``queue`` as an operator would (its consumers get ``basic.cancel``)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()


def test_a_node_whose_service_queue_is_deleted_serves_again_within_a_second(
    amqp_url: str, exchange: str
) -> None:
    with (
        NodeProcess.serve(amqp_url, exchange, "calc:Calc") as node,
        Client(amqp_url, exchange=exchange, invoke_timeout=5) as client,
    ):
        assert client.calc.add(1, 1) == 2
        _delete_queue(amqp_url, service_queue_name(exchange, "calc"))
        started = time.monotonic()
        wait_for(lambda: _answers(client), timeout=3, message="calls to succeed again")
        elapsed = time.monotonic() - started
        print(f"\nqueue deleted: calls succeed {elapsed:.2f}s later")
        assert elapsed < 1.5
        wait_for(lambda: "cancelled this node's consumer" in node.output, timeout=2)
        assert node.output.count("cancelled this node's consumer") == 1
