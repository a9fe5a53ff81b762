"""Test helpers for isc against a real RabbitMQ: throwaway nodes, a cuttable proxy, bounded waits.

Importable without pytest (``make demo`` boots a node with :class:`RabbitMQNode`); the pytest
fixtures built on it live in ``integration-tests/conftest.py``. The broker ships in isc-testing
(``isc.testing``) and the bounded waits with isc-client (``isc.client.testing``), for
users' own tests; ``broker`` and ``waiting`` here re-export them.
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
from .proxy import TcpProxy
from .waiting import Deadline, WaitTimeout, wait_for

__all__ = [
    "BrokerError",
    "BrokerStartError",
    "Deadline",
    "RabbitMQNode",
    "TcpProxy",
    "WaitTimeout",
    "amqp_handshake",
    "free_port",
    "wait_for",
    "wait_for_broker",
]
