"""Testing helpers for code that uses isc: a fake client, an in-memory broker, bounded waits.

* :class:`FakeClient`: a :class:`~isc.client.Client` that never connects; it answers calls
  from canned answers and records calls and notifications, for unit tests.
* ``RabbitMQNode`` (and ``BrokerError``, ``BrokerStartError``, ``amqp_handshake``,
  ``free_port``, ``wait_for_broker``): re-exported on first use from ``isc.testing``, the
  isc-testing distribution (``pip install "isc-client[testing]"``), which has the throwaway
  RabbitMQ node for integration tests and demos.
* :func:`wait_for`: poll a condition until it holds or a deadline passes, instead of sleeping.
* ``isc.client.testing.pytest_plugin``: the former path of ``isc.testing.pytest_plugin``
  (fixtures ``isc_broker``, ``isc_amqp_url``, ``isc_exchange``; needs isc-testing too).
  Importing this package imports neither pytest nor isc-testing.

To unit-test a service itself (calls, notifications, timers), see ``isc.server.testing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fake import FakeClient, RecordedCall, RecordedNotification
from .waiting import Deadline, WaitTimeout, wait_for

__all__ = [
    "FakeClient",
    "RecordedCall",
    "RecordedNotification",
    "Deadline",
    "WaitTimeout",
    "wait_for",
]

#: Names that moved to isc-testing (``isc.testing``), still importable from here.
_FROM_ISC_TESTING = frozenset(
    {
        "BrokerError",
        "BrokerStartError",
        "RabbitMQNode",
        "amqp_handshake",
        "free_port",
        "wait_for_broker",
    }
)

if TYPE_CHECKING:  # what __getattr__ returns, for type checkers
    from isc.testing import BrokerError as BrokerError
    from isc.testing import BrokerStartError as BrokerStartError
    from isc.testing import RabbitMQNode as RabbitMQNode
    from isc.testing import amqp_handshake as amqp_handshake
    from isc.testing import free_port as free_port
    from isc.testing import wait_for_broker as wait_for_broker


def __getattr__(name: str) -> Any:
    """Import the names that moved to isc-testing on first use (with an install hint)."""
    if name not in _FROM_ISC_TESTING:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import broker  # raises ModuleNotFoundError naming isc-client[testing]

    return getattr(broker, name)
