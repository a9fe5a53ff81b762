"""Test machinery for code that uses isc: a throwaway RabbitMQ node and a pytest plugin.

* :class:`RabbitMQNode`: a private, throwaway RabbitMQ node (needs ``rabbitmq-server``
  installed) on free ports in a temp dir, which a test may stop and start again on the same
  port; for integration tests, demos and benchmarks. :class:`RabbitMQCluster`: several of
  them joined into one RabbitMQ cluster.
* ``isc.testing.pytest_plugin``: pytest fixtures ``isc_broker``, ``isc_amqp_url`` and
  ``isc_exchange`` built on :class:`RabbitMQNode`. Opt in from a ``conftest.py`` with
  ``pytest_plugins = ["isc.testing.pytest_plugin"]``; importing this package does not
  import pytest.
* ``python -m isc.testing``: boot a node, print its URL, run until Ctrl-C or end of input.

Install with ``pip install "isc-client[testing]"``. ``isc.client.testing`` re-exports these
names under their former import paths.
"""

from __future__ import annotations

from ._version import __version__
from .rabbitmq import (
    BrokerError,
    BrokerStartError,
    RabbitMQCluster,
    RabbitMQNode,
    amqp_handshake,
    free_port,
    wait_for_broker,
)

__all__ = [
    "BrokerError",
    "BrokerStartError",
    "RabbitMQCluster",
    "RabbitMQNode",
    "__version__",
    "amqp_handshake",
    "free_port",
    "wait_for_broker",
]
