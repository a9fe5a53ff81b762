"""Names on the broker: exchanges, queues, routing keys and ids (the isclib 1.x topology).

With exchange ``X`` (default ``isc``):

* ``X`` - direct exchange carrying requests and replies;
* ``X_fanout`` - fanout exchange carrying notifications to every node;
* ``X_service_<name>`` - the queue shared by every node of service ``<name>``, bound to ``X``
  with its own name as routing key;
* ``response-<uuid4>`` - a client's exclusive reply queue, bound to ``X`` under its own name;
* ``fanout_callback_<uuid4>`` - a node's exclusive queue bound to ``X_fanout``.
"""

from __future__ import annotations

import itertools
import os
import uuid

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_EXCHANGE",
    "MAX_NAME_BYTES",
    "fanout_exchange_name",
    "service_queue_name",
    "service_routing_key",
    "reply_queue_name",
    "broadcast_queue_name",
    "dead_letter_queue_name",
    "listener_queue_name",
    "new_correlation_id",
    "timer_queue_name",
    "validate_exchange_name",
    "validate_service_name",
]

#: The exchange used when none is given.
DEFAULT_EXCHANGE = "isc"
#: AMQP 0-9-1 limits queue names, exchange names and routing keys to 255 bytes of UTF-8.
MAX_NAME_BYTES = 255


def _check_length(kind: str, name: str) -> None:
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ConfigurationError(
            f"{kind} {name[:40]!r}... is longer than AMQP's {MAX_NAME_BYTES}-byte limit"
        )


def validate_exchange_name(exchange: str) -> str:
    """Return ``exchange`` if it can name the exchanges, else raise :class:`ConfigurationError`."""
    if not isinstance(exchange, str) or not exchange:
        raise ConfigurationError(f"exchange must be a non-empty string, got {exchange!r}")
    if exchange.startswith("amq."):
        raise ConfigurationError(f"exchange {exchange!r} uses the prefix 'amq.' reserved by AMQP")
    _check_length("exchange name", fanout_exchange_name(exchange))
    return exchange


def validate_service_name(exchange: str, service: str) -> str:
    """Return ``service`` if it can name a service queue, else raise :class:`ConfigurationError`."""
    if not isinstance(service, str) or not service:
        raise ConfigurationError(f"service name must be a non-empty string, got {service!r}")
    _check_length("service queue name", service_queue_name(exchange, service))
    return service


def fanout_exchange_name(exchange: str) -> str:
    """The fanout exchange that carries notifications: ``<exchange>_fanout``."""
    return f"{exchange}_fanout"


def service_queue_name(exchange: str, service: str) -> str:
    """The queue shared by all nodes of ``service``: ``<exchange>_service_<service>``."""
    return f"{exchange}_service_{service}"


#: Requests for a service are published to ``exchange`` with the queue's name as routing key.
service_routing_key = service_queue_name


def reply_queue_name() -> str:
    """A new unique name for a client's exclusive reply queue: ``response-<uuid4>``."""
    return f"response-{uuid.uuid4()}"


def listener_queue_name(exchange: str, service: str, method: str, event: str) -> str:
    """The durable queue of a ``mode="service"`` listener:
    ``<exchange>_listener_<service>.<method>:<event>``."""
    return f"{exchange}_listener_{service}.{method}:{event}"


def dead_letter_queue_name(exchange: str, service: str, method: str, event: str) -> str:
    """Where a ``mode="service"`` listener's failed notifications go once their retries are
    spent: ``<exchange>_dead_<service>.<method>:<event>``."""
    return f"{exchange}_dead_{service}.{method}:{event}"


def timer_queue_name(exchange: str, service: str, method: str) -> str:
    """The single-active-consumer queue holding a ``@cluster_timer``'s lease:
    ``<exchange>_timer_<service>.<method>``."""
    return f"{exchange}_timer_{service}.{method}"


def broadcast_queue_name() -> str:
    """A new unique name for a node's exclusive notification queue."""
    return f"fanout_callback_{uuid.uuid4()}"


class _CorrelationIds:
    """Correlation ids in the 36-character form of a UUID4, as isclib 1.x sends, for a fraction
    of ``str(uuid.uuid4())``'s cost (a ``getrandom`` system call and a ``UUID`` object each).

    The first 80 bits come from one random UUID4 per process (version and variant included);
    the last 48 count up. Ids are unique within a process, and across processes as long as
    their random parts differ; a forked child draws its own.
    """

    def __init__(self) -> None:
        self._reseed()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]  # "xxxxxxxx-xxxx-4xxx-yxxx-"
        self._counter = itertools.count(int.from_bytes(os.urandom(3), "big"))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


_correlation_ids = _CorrelationIds()


def new_correlation_id() -> str:
    """A new correlation id, unique in this process (a UUID4's 36-character form, as isclib
    1.x sends; isc nodes and isclib 1.x nodes only echo it back)."""
    return _correlation_ids()
