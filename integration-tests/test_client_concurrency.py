"""One client shared by threads under mixed latencies, done-callbacks that call, forks,
dropped clients and late gevent patching, against a real broker.

"Slow" calls go to a gated service: it holds each request until the test opens its gate, like
a stuck service, so they stay pending for as long as the test needs and no longer. Assertions
are about order (a fast call returns while a slow one is still pending), never about how fast
something was.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isc.client import Client, TimeoutException
from isc.core import AbstractCodec
from isc_testing import wait_for
from isc_testing.raw_service import RawService

STUCK = "stuck"


@pytest.fixture
def service(amqp_url: str, exchange: str) -> Iterator[RawService]:
    with RawService(amqp_url, exchange, "calc") as svc:
        yield svc


class Gate:
    """The stuck service's gate: its requests wait until :meth:`open` (or 60 s)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self) -> str:
        """The stuck service's only method: returns once the gate opens."""
        return "released" if self._event.wait(60) else "gave up"

    def open(self) -> None:
        """Let every held request (and every later one) through."""
        self._event.set()


@pytest.fixture
def stuck(amqp_url: str, exchange: str) -> Iterator[Gate]:
    """A service that holds each call until the test opens the gate (opened at teardown)."""
    gate = Gate()
    with RawService(amqp_url, exchange, STUCK, {"wait": gate.wait}):
        try:
            yield gate
        finally:
            gate.open()  # before the service stops: it may be holding a request


@pytest.fixture
def client(amqp_url: str, exchange: str, codec: AbstractCodec) -> Iterator[Client]:
    c = Client(amqp_url, exchange=exchange, codec=codec, invoke_timeout=10)
    yield c
    c.stop()


class SlowCallers:
    """Threads each blocked in one call to the stuck service until its gate opens."""

    def __init__(self, client: Client, gate: Gate, count: int) -> None:
        self.outcomes: list[object] = []
        self.gate = gate
        self.threads = [threading.Thread(target=self._call, args=(client,)) for _ in range(count)]

    def _call(self, client: Client) -> None:
        try:
            self.outcomes.append(client.call(STUCK, "wait", timeout=60))
        except TimeoutException:
            self.outcomes.append("timeout")

    def __enter__(self) -> SlowCallers:
        for thread in self.threads:
            thread.start()
        return self

    def pending(self) -> bool:
        """Whether every slow call is still waiting."""
        return not self.outcomes and all(t.is_alive() for t in self.threads)

    def __exit__(self, *exc_info: object) -> None:
        self.gate.open()
        for thread in self.threads:
            thread.join(30)


def test_a_fast_call_returns_while_another_threads_slow_call_waits(
    client: Client, service: RawService, stuck: Gate
) -> None:
    assert client.calc.add(1, 1) == 2  # connected
    with SlowCallers(client, stuck, 1) as slow:
        wait_for(lambda: client.pending_calls == 1, 10, "the slow call to be pending")
        for n in range(20):
            assert client.calc.add(n, 1) == n + 1
        assert slow.pending()  # all 20 fast calls finished first
    assert slow.outcomes == ["released"]


def test_threads_making_fast_calls_are_not_held_up_by_threads_waiting_on_slow_ones(
    client: Client, service: RawService, stuck: Gate
) -> None:
    assert client.calc.add(1, 1) == 2
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def fast(worker: int) -> None:
        try:
            results[worker] = [client.calc.add(worker, n) for n in range(10)]
        except BaseException as exc:
            errors.append(exc)

    with SlowCallers(client, stuck, 2) as slow:
        wait_for(lambda: client.pending_calls == 2, 10, "both slow calls to be pending")
        threads = [threading.Thread(target=fast, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert slow.pending()  # 40 fast calls from 4 threads, all before either slow call
    assert slow.outcomes == ["released", "released"]
    assert errors == []
    assert results == {w: [w + n for n in range(10)] for w in range(4)}


def test_a_done_callback_may_make_a_blocking_call(client: Client, service: RawService) -> None:
    future = client.calc.add.call_async(1, 1)
    seen: list[object] = []
    done = threading.Event()

    def callback(f: object) -> None:
        try:
            seen.append(client.calc.add(2, 3))  # a blocking call from the callback thread
        except BaseException as exc:
            seen.append(exc)
        done.set()

    future.add_done_callback(callback)
    assert done.wait(15)
    assert future.result(0) == 2
    assert seen == [5]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_calls_over_its_own_connection_and_the_parent_keeps_working(
    client: Client, service: RawService
) -> None:
    assert client.calc.add(1, 1) == 2  # the parent is connected before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report over the pipe, never return into pytest
        code = 1
        try:
            answers = [client.calc.add(n, 100) for n in range(5)]
            os.write(write, repr(answers).encode())
            client.stop()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        parent_answers = [client.calc.add(n, 1) for n in range(20)]  # while the child calls
        report = os.read(read, 1000).decode()
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert report == repr([n + 100 for n in range(5)])
    assert parent_answers == [n + 1 for n in range(20)]
    assert client.calc.add(2, 2) == 4  # the child's exit closed nothing of the parent's
    assert client.stats["dropped_replies"] == 0


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_dropped_clients_release_their_threads_and_sockets(
    amqp_url: str, exchange: str, service: RawService
) -> None:
    gc.collect()
    threads, fds = threading.active_count(), _fds()
    for n in range(20):
        dropped = Client(amqp_url, exchange=exchange)
        assert dropped.calc.add(n, 1) == n + 1
    del dropped
    gc.collect()
    wait_for(lambda: threading.active_count() <= threads, 15, "the I/O threads to end")
    wait_for(lambda: _fds() <= fds, 15, "the sockets and pollers to close")


def test_importing_isc_server_after_a_client_was_used(amqp_url: str, exchange: str) -> None:
    """The client switches to a gevent-friendly loop after the process is patched."""
    script = textwrap.dedent(
        f"""
        import sys
        from isc.client import Client, ServiceNotFoundError
        client = Client({amqp_url!r}, exchange={exchange!r})
        for when in ("before", "after"):
            if when == "after":
                import isc.server  # applies gevent's monkey patching
            try:
                client.nosuch.ping(timeout=5)
            except ServiceNotFoundError:
                print(when, "ok")
        client.stop()
        """
    )
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error::ResourceWarning"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["before ok", "after ok"]
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr


def test_a_call_never_outlives_its_timeout_while_other_threads_wait(
    client: Client, service: RawService, stuck: Gate
) -> None:
    """Every slow call ends at its own timeout (with four threads waiting on the loop, one
    took twice its timeout: it waited for the lock, then drove the loop its whole timeout)."""
    assert client.calc.add(1, 1) == 2
    overruns: list[float] = []

    def slow(timeout: float) -> None:
        started = time.monotonic()
        try:
            client.call(STUCK, "wait", timeout=timeout)
        except TimeoutException:
            overruns.append(time.monotonic() - started - timeout)

    threads = [threading.Thread(target=slow, args=(0.5 + 0.25 * n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(overruns) == 5
    assert max(overruns) < 0.5, overruns  # docs/concepts.md: a call ends within 0.5 s of it
