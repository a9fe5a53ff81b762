"""pytest fixtures for integration tests against a real, throwaway RabbitMQ broker.

Opt in from the ``conftest.py`` at the root of your tests (installing isc-testing does not
register it, so other projects' test runs stay untouched)::

    pytest_plugins = ["isc.testing.pytest_plugin"]

or per run: ``pytest -p isc.testing.pytest_plugin``. (``isc.client.testing.pytest_plugin``, its
former path, still works.) Fixtures:

* ``isc_broker`` (session): an :class:`IscBroker`, the session's broker. The first test that
  needs it boots a private RabbitMQ node (:class:`~isc.testing.RabbitMQNode`, about
  5-10 s, on free ports on 127.0.0.1, data in a temp dir), and the end of the session stops
  it and deletes its data. Under pytest-xdist each worker boots its own.
* ``isc_amqp_url`` (session): the broker's URL.
* ``isc_exchange`` (function): an exchange name of the test's own, so tests never see each
  other's services or notifications and may run in parallel; its exchanges are deleted after
  the test. (Service queues, ``<exchange>_service_<name>``, stay until the broker stops: on a
  broker you keep, via ``ISC_TEST_AMQP_URL``, delete them yourself if they pile up.)

Environment variables:

* ``ISC_TEST_AMQP_URL``: use this running broker instead of starting one (a developer's
  broker, a CI service container).
* ``ISC_TEST_REQUIRE_BROKER=1``: fail instead of skipping the tests that need a broker when
  ``rabbitmq-server`` is not installed (set it in CI, where a skip would hide the tests).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from isc.core import redact_url

from .rabbitmq import (
    DEFAULT_BIN_DIR,
    RabbitMQNode,
    amqp_handshake,
    delete_exchanges,
    unique_exchange_name,
)

__all__ = ["ENV_AMQP_URL", "ENV_REQUIRE_BROKER", "IscBroker"]

log = logging.getLogger("isc.testing")

#: Use this broker instead of starting one.
ENV_AMQP_URL = "ISC_TEST_AMQP_URL"
#: "1": fail, not skip, when no broker can be started.
ENV_REQUIRE_BROKER = "ISC_TEST_REQUIRE_BROKER"
#: Seconds a throwaway node may take to answer its first AMQP handshake.
BOOT_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class IscBroker:
    """The broker of a test session: its URL, and the node if the plugin started one."""

    #: ``amqp://guest:guest@127.0.0.1:<port>/%2F`` (or ``ISC_TEST_AMQP_URL``).
    url: str
    #: The throwaway node, or None when ``ISC_TEST_AMQP_URL`` names the broker.
    node: RabbitMQNode | None = None


@pytest.fixture(scope="session")
def isc_broker() -> Iterator[IscBroker]:
    """The session's broker: ``ISC_TEST_AMQP_URL``, or a throwaway node booted on first use."""
    url = os.environ.get(ENV_AMQP_URL, "").strip()
    if url:
        try:
            amqp_handshake(url, timeout=10.0)
        except (pika.exceptions.AMQPError, OSError) as exc:
            pytest.fail(
                f"{ENV_AMQP_URL}={redact_url(url)} does not answer an AMQP handshake "
                f"({type(exc).__name__}: {exc}); start that broker, or unset {ENV_AMQP_URL} "
                "to use a throwaway one",
                pytrace=False,
            )
        yield IscBroker(url)
        return
    if not RabbitMQNode.available():
        reason = (
            f"rabbitmq-server is not installed ({DEFAULT_BIN_DIR} has no rabbitmq-server): "
            "install it (Debian/Ubuntu: apt-get install rabbitmq-server) or set "
            f"{ENV_AMQP_URL} to a running broker"
        )
        if os.environ.get(ENV_REQUIRE_BROKER, "").strip() in ("1", "true", "yes"):
            pytest.fail(f"{reason} ({ENV_REQUIRE_BROKER} is set)", pytrace=False)
        pytest.skip(reason)
    node = RabbitMQNode.launch(boot_timeout=BOOT_TIMEOUT)
    try:
        yield IscBroker(node.amqp_url, node)
    finally:
        node.close()


@pytest.fixture(scope="session")
def isc_amqp_url(isc_broker: IscBroker) -> str:
    """The URL of the session's broker (``amqp://...``), ready for connections."""
    return isc_broker.url


@pytest.fixture
def isc_exchange(isc_amqp_url: str) -> Iterator[str]:
    """A unique isc exchange name for one test; its exchanges are deleted afterwards."""
    name = unique_exchange_name()
    yield name
    delete_exchanges(isc_amqp_url, name)
