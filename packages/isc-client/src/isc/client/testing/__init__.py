"""Testing helpers for code that uses isc: a fake client, a throwaway broker, bounded waits.

* :class:`FakeClient`: a :class:`~isc.client.Client` that never connects; it answers calls
  from canned answers and records calls and notifications, for unit tests.
* :class:`RabbitMQNode`: a private, throwaway RabbitMQ node (needs ``rabbitmq-server``
  installed) for integration tests and demos.
* :func:`wait_for`: poll a condition until it holds or a deadline passes, instead of sleeping.
* ``isc.client.testing.pytest_plugin``: pytest fixtures ``isc_broker``, ``isc_amqp_url`` and
  ``isc_exchange`` built on :class:`RabbitMQNode`. Opt in from a ``conftest.py`` with
  ``pytest_plugins = ["isc.client.testing.pytest_plugin"]``; importing this package does not
  import pytest.

To unit-test a service itself (calls, notifications, timers), see ``isc.server.testing``.
"""

from __future__ import annotations

from .broker import (
    BrokerError,
    BrokerStartError,
    RabbitMQNode,
    amqp_handshake,
    free_port,
    wait_for_broker,
)
from .fake import FakeClient, RecordedCall, RecordedNotification
from .waiting import Deadline, WaitTimeout, wait_for

__all__ = [
    "FakeClient",
    "RecordedCall",
    "RecordedNotification",
    "BrokerError",
    "BrokerStartError",
    "RabbitMQNode",
    "amqp_handshake",
    "free_port",
    "wait_for_broker",
    "Deadline",
    "WaitTimeout",
    "wait_for",
]
