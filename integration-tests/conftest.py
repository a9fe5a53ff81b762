"""pytest plugin of the isc integration suite: a throwaway RabbitMQ node and fixtures around it.

One node serves the whole run. The process that owns the session (the xdist controller, or
the only process under ``-n 0``) starts it in ``pytest_sessionstart`` without waiting, so it
boots while xdist spawns workers and tests are collected; workers get its URL through
``workerinput`` and wait for a real AMQP handshake in the ``amqp_url`` fixture. Tests are
isolated by names (a unique exchange per test, exclusive or auto-delete queues), not by cleanup.

Why one node per run rather than one per xdist worker (measured on this 2-core machine,
``ISC_TEST_CODEC=json pytest integration-tests -n 2``, 3 runs each, outage test deselected):
a node boot costs ~8 CPU-seconds, so boots compete for the cores with each other and with
worker start-up. One controller-owned node: AMQP ready ~9 s after spawn, suite 12.5-12.6 s
wall, peak RSS 140-144 MB. One node per worker: each ready after 11-12 s, suite 16.6-19.2 s,
peak RSS 278 MB. With the private-node outage test included: 23.7-26.7 s vs 28.6-31.3 s,
283-285 MB vs 397-423 MB.

Environment:

* ``ISC_TEST_AMQP_URL``: use this existing broker instead of starting one.
* ``ISC_TEST_CODEC``: the codec under test (``pickle``, ``json``, ...); unset or ``all``: all
  of them in one session (what ``make integration`` runs: one environment per Python).
* ``ISC_TEST_FAULTS_EVERYWHERE=1``: run the tests marked ``fault`` or ``tooling`` on every
  Python, not just one.
* ``ISC_TEST_SKIP_MARKERS=tooling,cluster``: skip the tests with these markers (the
  stock-pika environment sets it: it runs on the Python that already ran them).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import isc.codecs
from isc.core.codecs import AbstractCodec
from isc_testing import RabbitMQNode, TcpProxy, wait_for_broker
from isc_testing.broker import delete_exchanges, log_tail, unique_exchange_name

ENV_AMQP_URL = "ISC_TEST_AMQP_URL"
ENV_CODEC = "ISC_TEST_CODEC"
#: ISC_TEST_CODEC value meaning every codec in one session (as when unset).
ALL_CODECS = "all"
BOOT_TIMEOUT = 60.0
#: The matrix environment that runs the tests marked ``codec_independent``.
CODEC_INDEPENDENT_RUNS_WITH = "json"
#: The Python that runs the tests marked ``fault`` (they restart brokers and kill nodes:
#: slow, and about the library's logic rather than the interpreter) and ``tooling`` (the
#: test harness, the pytest plugin, ``make demo`` and the commands shown in the docs: what
#: the project's own tooling does, with the library's own behaviour covered per Python by
#: the rest of the suite).
FAULTS_RUN_ON = (3, 11)
ENV_FAULTS_EVERYWHERE = "ISC_TEST_FAULTS_EVERYWHERE"
ENV_SKIP_MARKERS = "ISC_TEST_SKIP_MARKERS"
#: The markers whose tests run on one Python of the matrix only.
ONE_PYTHON_MARKERS = ("fault", "tooling", "cluster")


class _Broker:
    """Where the run's broker is, as every process of the run sees it."""

    def __init__(
        self,
        url: str,
        *,
        pid: int | None = None,
        spawned_at: float | None = None,
        log_files: tuple[str, ...] = (),
        node: RabbitMQNode | None = None,
    ) -> None:
        self.url = url
        self.pid = pid
        self.spawned_at = spawned_at
        self.log_files = log_files
        self.node = node  # only in the process that owns the node
        self.ready_after: float | None = None  # seconds from spawn to first handshake
        self.rss_bytes = 0

    @classmethod
    def for_node(cls, node: RabbitMQNode) -> _Broker:
        """Describe a node this process started."""
        return cls(
            node.amqp_url,
            pid=node.pid,
            spawned_at=node.spawned_at,
            log_files=tuple(str(path) for path in node.log_files()),
            node=node,
        )

    def to_workerinput(self) -> dict[str, Any]:
        """What a worker needs (plain data: execnet sends it to the worker)."""
        return {
            "url": self.url,
            "pid": self.pid,
            "spawned_at": self.spawned_at,
            "log_files": list(self.log_files),
        }

    @classmethod
    def from_workerinput(cls, data: dict[str, Any]) -> _Broker:
        """Rebuild in a worker what :meth:`to_workerinput` sent."""
        return cls(
            data["url"],
            pid=data["pid"],
            spawned_at=data["spawned_at"],
            log_files=tuple(data["log_files"]),
        )

    def wait_ready(self) -> None:
        """Wait for an AMQP handshake (raises BrokerStartError with the node's log tail)."""
        if self.node is not None:
            self.node.wait_until_ready(BOOT_TIMEOUT)
            self.ready_after = self.node.boot_seconds
            return
        pid = self.pid
        wait_for_broker(
            self.url,
            BOOT_TIMEOUT if pid is not None else 10.0,
            process_alive=None if pid is None else lambda: _pid_alive(pid),
            describe_logs=lambda: log_tail([Path(p) for p in self.log_files]),
        )
        if self.spawned_at is not None:
            self.ready_after = time.time() - self.spawned_at


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_broker_key = pytest.StashKey[_Broker]()
_WORKERINPUT_KEY = "isc_testing_broker"
_WORKEROUTPUT_KEY = "isc_testing_ready_after"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _codec_under_test() -> str:
    """ISC_TEST_CODEC, with ``all`` (the matrix's one-session-per-Python value) as unset."""
    name = os.environ.get(ENV_CODEC, "").strip()
    return "" if name == ALL_CODECS else name


def _codec_names() -> list[str]:
    name = _codec_under_test()
    return [name] if name else list(isc.codecs.CODECS)


# -- hooks ----------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Register markers; reject an unknown ISC_TEST_CODEC before anything starts."""
    if not config.pluginmanager.hasplugin("xdist"):
        config.addinivalue_line(
            "markers", "xdist_group(name): run these tests on one pytest-xdist worker"
        )
    config.addinivalue_line(
        "markers",
        "codec_independent: exercises no codec; runs once per Python (in the "
        f"{CODEC_INDEPENDENT_RUNS_WITH!r} environment, or when {ENV_CODEC} is unset)",
    )
    one_python = ".".join(map(str, FAULTS_RUN_ON))
    config.addinivalue_line(
        "markers",
        f"fault: fault-injection test; runs on Python {one_python} only "
        f"(set {ENV_FAULTS_EVERYWHERE}=1 for all)",
    )
    config.addinivalue_line(
        "markers",
        f"cluster: a test on a real 3-member RabbitMQ cluster; runs on Python {one_python} "
        "only, in the json environment (mark it codec_independent too)",
    )
    config.addinivalue_line(
        "markers",
        f"tooling: a test of the project's tooling or of the docs' commands; runs on Python "
        f"{one_python} only (set {ENV_FAULTS_EVERYWHERE}=1 for all)",
    )
    name = _codec_under_test()
    if name and name not in isc.codecs.CODECS:
        raise pytest.UsageError(
            f"{ENV_CODEC}={name!r} is not an isc codec; "
            f"choose one of {', '.join(isc.codecs.CODECS)} (or {ALL_CODECS})"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run codec-independent tests in one codec's environment only (the matrix has four),
    and fault and tooling tests on one Python only (the matrix has five)."""
    one_python = ".".join(map(str, FAULTS_RUN_ON))
    skips: dict[str, pytest.MarkDecorator] = {}
    if sys.version_info[:2] != FAULTS_RUN_ON and not os.environ.get(ENV_FAULTS_EVERYWHERE):
        for marker in ONE_PYTHON_MARKERS:
            skips[marker] = pytest.mark.skip(reason=f"{marker} suite: runs on Python {one_python}")
    for marker in filter(None, os.environ.get(ENV_SKIP_MARKERS, "").split(",")):
        skips[marker.strip()] = pytest.mark.skip(reason=f"{ENV_SKIP_MARKERS} names {marker}")
    for item in items:
        for marker, skip in skips.items():
            if item.get_closest_marker(marker):
                item.add_marker(skip)
                break
    name = _codec_under_test()
    if not name or name == CODEC_INDEPENDENT_RUNS_WITH:
        return
    skip = pytest.mark.skip(
        reason=f"codec-independent: runs in the {CODEC_INDEPENDENT_RUNS_WITH} environment"
    )
    for item in items:
        if item.get_closest_marker("codec_independent"):
            item.add_marker(skip)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Find or start the run's broker (before xdist's own sessionstart spawns workers)."""
    config = session.config
    if _is_worker(config):
        data = config.workerinput.get(_WORKERINPUT_KEY)  # type: ignore[attr-defined]
        if data is not None:
            config.stash[_broker_key] = _Broker.from_workerinput(data)
        return
    url = os.environ.get(ENV_AMQP_URL, "").strip()
    if url:
        config.stash[_broker_key] = _Broker(url)
    elif not config.getoption("collectonly"):
        # Boots while workers spawn and tests are collected; amqp_url waits for it.
        config.stash[_broker_key] = _Broker.for_node(RabbitMQNode.launch(wait=False))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the broker's address to each worker."""
    broker = node.config.stash.get(_broker_key, None)
    if broker is not None:
        node.workerinput[_WORKERINPUT_KEY] = broker.to_workerinput()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: note how soon a worker first reached the broker (for the summary)."""
    ready_after = getattr(node, "workeroutput", {}).get(_WORKEROUTPUT_KEY)
    broker = node.config.stash.get(_broker_key, None)
    if broker is not None and ready_after is not None:
        broker.ready_after = min(broker.ready_after or ready_after, ready_after)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the node this process started and delete its temp dir."""
    config = session.config
    broker = config.stash.get(_broker_key, None)
    if broker is None:
        return
    if _is_worker(config) and broker.ready_after is not None:
        config.workeroutput[_WORKEROUTPUT_KEY] = broker.ready_after  # type: ignore[attr-defined]
    if broker.node is not None:
        broker.rss_bytes = broker.node.rss_bytes()
        broker.node.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Backstop for runs that end without sessionfinish (close() is idempotent)."""
    broker = config.stash.get(_broker_key, None)
    if broker is not None and broker.node is not None:
        broker.node.close()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line on the throwaway broker: its boot time and memory."""
    broker = config.stash.get(_broker_key, None)
    if broker is None or broker.node is None:
        return
    ready = f"{broker.ready_after:.1f} s" if broker.ready_after is not None else "n/a"
    terminalreporter.write_line(
        f"isc_testing: RabbitMQ {broker.node.nodename} at {broker.url}: AMQP ready {ready} "
        f"after spawn, {broker.rss_bytes / 2**20:.0f} MB RSS at the end"
    )


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def amqp_url(pytestconfig: pytest.Config) -> str:
    """The URL of the run's broker, once it answers an AMQP handshake."""
    broker = pytestconfig.stash.get(_broker_key, None)
    if broker is None:
        raise pytest.UsageError(f"no broker for this run (set {ENV_AMQP_URL} or run tests)")
    broker.wait_ready()
    return broker.url


@pytest.fixture
def exchange(amqp_url: str) -> Iterator[str]:
    """A unique isc exchange name for one test; its two exchanges are deleted afterwards."""
    name = unique_exchange_name()
    yield name
    delete_exchanges(amqp_url, name)


@pytest.fixture(params=_codec_names())
def codec(request: pytest.FixtureRequest) -> AbstractCodec:
    """The codec under test: ISC_TEST_CODEC, or each of isc's codecs in turn."""
    return isc.codecs.get_codec(request.param)


@pytest.fixture(scope="session")
def _private_node() -> Iterator[RabbitMQNode]:
    """A node of this worker's own, booted on first use, for tests that stop the broker."""
    if not RabbitMQNode.available():
        if os.environ.get(ENV_AMQP_URL):
            pytest.skip("needs rabbitmq-server installed to start a private node")
        pytest.fail("rabbitmq-server is not installed (/usr/lib/rabbitmq/bin)")
    node = RabbitMQNode.launch(boot_timeout=BOOT_TIMEOUT)
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def rabbitmq_node(_private_node: RabbitMQNode) -> RabbitMQNode:
    """A private broker the test may stop() and start(); it is running when the test begins.

    Mark such tests ``@pytest.mark.xdist_group("broker-outage")`` so that, with
    ``--dist loadgroup``, one worker boots the private node for all of them.
    """
    return _private_node.start()


@pytest.fixture
def tcp_proxy(amqp_url: str) -> Iterator[TcpProxy]:
    """A TCP proxy in front of the run's broker: connect to ``tcp_proxy.url``; ``cut()`` it."""
    with TcpProxy.for_url(amqp_url) as proxy:
        yield proxy
