"""The suite's throwaway RabbitMQ node: it now ships with isc-client as ``isc.client.testing``.

Re-exported here so the suite, ``make demo`` and the benchmarks keep importing
``isc_testing.broker``; the code lives in ``isc/client/testing/broker.py``.
"""

from __future__ import annotations

from isc.client.testing.broker import (
    DEFAULT_BIN_DIR,
    LOCALHOST,
    BrokerError,
    BrokerStartError,
    RabbitMQNode,
    amqp_handshake,
    delete_exchanges,
    free_port,
    log_tail,
    process_group_rss,
    unique_exchange_name,
    wait_for_broker,
)

__all__ = [
    "DEFAULT_BIN_DIR",
    "LOCALHOST",
    "BrokerError",
    "BrokerStartError",
    "RabbitMQNode",
    "amqp_handshake",
    "delete_exchanges",
    "free_port",
    "log_tail",
    "process_group_rss",
    "unique_exchange_name",
    "wait_for_broker",
]
