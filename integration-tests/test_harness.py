"""The harness itself: the run's broker, a private node's outages, the proxy, bounded waits."""

from __future__ import annotations

import subprocess
import sys

import pika
import pika.exceptions
import pytest

from isc_testing import RabbitMQNode, TcpProxy, WaitTimeout, wait_for

pytestmark = [pytest.mark.codec_independent, pytest.mark.tooling]


def _connect(url: str, timeout: float = 5.0) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    return pika.BlockingConnection(params)


def _echo(connection: pika.BlockingConnection, body: bytes) -> bytes:
    """Publish ``body`` to a new exclusive queue on ``connection`` and fetch it back."""
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, body)

    def fetch() -> bytes | None:
        method, _, got = channel.basic_get(queue, auto_ack=True)
        return got if method is not None else None

    got: bytes = wait_for(fetch, timeout=5, message=f"the message on {queue}")
    channel.close()
    return got


def test_broker_answers_a_handshake(amqp_url: str) -> None:
    assert amqp_url.startswith("amqp://")
    connection = _connect(amqp_url)
    try:
        assert _echo(connection, b"ping") == b"ping"
    finally:
        connection.close()


def test_wait_for_returns_the_value_or_fails_with_the_message() -> None:
    calls = iter(range(1, 100))
    assert wait_for(lambda: next(calls) >= 3, timeout=5, message="three calls") is True
    with pytest.raises(WaitTimeout, match="waiting for the impossible"):
        wait_for(lambda: False, timeout=0.05, message="the impossible")
    with pytest.raises(WaitTimeout, match="last error: ValueError"):
        wait_for(_raise_value_error, timeout=0.05, ignore=(ValueError,))


def _raise_value_error() -> bool:
    raise ValueError("not yet")


@pytest.mark.fault
@pytest.mark.xdist_group("broker-outage")
def test_private_node_stops_and_restarts_on_the_same_port(rabbitmq_node: RabbitMQNode) -> None:
    url, port = rabbitmq_node.amqp_url, rabbitmq_node.amqp_port
    survivor = _connect(url)
    assert survivor.is_open

    rabbitmq_node.stop()

    assert not rabbitmq_node.running
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        survivor.channel()  # the broker closed it on the way down
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        _connect(url, timeout=2)

    rabbitmq_node.start()

    assert rabbitmq_node.pid is not None  # running again
    assert rabbitmq_node.amqp_port == port
    assert rabbitmq_node.amqp_url == url
    connection = _connect(url)
    try:
        assert _echo(connection, b"after restart") == b"after restart"
    finally:
        connection.close()


def test_proxy_forwards_a_connection(tcp_proxy: TcpProxy, amqp_url: str) -> None:
    assert tcp_proxy.url is not None
    assert tcp_proxy.url != amqp_url
    connection = _connect(tcp_proxy.url)
    try:
        assert tcp_proxy.active_connections == 1
        assert _echo(connection, b"through the proxy") == b"through the proxy"
    finally:
        connection.close()
    wait_for(lambda: tcp_proxy.active_connections == 0, timeout=5, message="the link to close")


@pytest.mark.fault
@pytest.mark.parametrize("reset", [True, False], ids=["rst", "fin"])
def test_proxy_cut_breaks_live_connections_but_accepts_new_ones(
    tcp_proxy: TcpProxy, reset: bool
) -> None:
    assert tcp_proxy.url is not None
    victim = _connect(tcp_proxy.url)
    channel = victim.channel()
    channel.queue_declare("", exclusive=True)

    assert tcp_proxy.cut(reset=reset) == 1

    assert tcp_proxy.active_connections == 0
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        channel.queue_declare("", exclusive=True)
    assert not victim.is_open

    fresh = _connect(tcp_proxy.url)
    try:
        assert _echo(fresh, b"still accepting") == b"still accepting"
    finally:
        fresh.close()
    assert tcp_proxy.accepted == 2


@pytest.mark.fault  # boots a node of its own (~10 s): with the other node-booting tests
def test_python_m_isc_testing_serves_a_node_until_its_input_closes() -> None:
    """What scripts/run_matrix.py relies on to share one node across a matrix."""
    if not RabbitMQNode.available():
        pytest.skip("needs rabbitmq-server installed")
    with subprocess.Popen(  # the with block closes the pipes: no ResourceWarning later
        [sys.executable, "-m", "isc.testing"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            line = proc.stdout.readline()
            assert line.startswith("ISC_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:"), line
            url = line.split("=", 1)[1].strip()
            connection = _connect(url)
            try:
                assert _echo(connection, b"shared") == b"shared"
            finally:
                connection.close()
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0
            with pytest.raises(pika.exceptions.AMQPConnectionError):
                _connect(url, timeout=2)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
