"""The suite's throwaway RabbitMQ node: it ships in the isc-testing distribution as ``isc.testing``.

Re-exported here so the suite, ``make demo`` and the benchmarks keep importing
``isc_testing.broker``; the code lives in ``packages/isc-testing/src/isc/testing/rabbitmq.py``.
"""

from __future__ import annotations

from isc.testing.rabbitmq import (
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
