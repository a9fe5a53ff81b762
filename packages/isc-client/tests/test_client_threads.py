"""The client's runtime contracts that need no broker: timeouts whatever other threads do,
where done-callbacks run, the pending-call bound, garbage collection, forks, gevent."""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from isc.client import (
    Client,
    ClientClosedError,
    FutureResult,
    TimeoutException,
    TooManyPendingCallsError,
    _process,
)
from isc.client._callbacks import CallbackRunner
from isc.client.testing.waiting import wait_for
from isc.core import ConfigurationError

# A port nothing listens on: these tests never reach a broker.
NOWHERE = "amqp://guest:guest@127.0.0.1:1/"

#: What a blocking call may take beyond its timeout (documented in docs/concepts.md).
GRACE = 0.5


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client(NOWHERE, reconnect_timeout=0.2)
    yield c
    c.stop()


def test_calls_from_many_threads_end_at_their_own_timeouts_while_disconnected(
    client: Client,
) -> None:
    """Each thread's call ends at its own timeout, however many threads wait (it was twice
    the timeout with 4+ threads: a caller waited for the loop's lock, then drove the loop
    for its whole timeout)."""
    timeouts = [0.4, 0.6, 0.8, 1.0, 1.2, 1.4]
    overruns: list[float] = []
    errors: list[BaseException] = []

    def caller(timeout: float) -> None:
        started = time.monotonic()
        try:
            client.call("calc", "add", (1, 1), timeout=timeout)
        except TimeoutException:
            overruns.append(time.monotonic() - started - timeout)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(t,)) for t in timeouts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(overruns) == len(timeouts)
    assert max(overruns) < GRACE, overruns
    assert client.pending_calls == 0


def test_a_call_that_loses_the_race_with_its_reply_returns_the_reply() -> None:
    future = FutureResult("calc.add")
    assert future.resolve(5)
    assert not future.reject(TimeoutException("late"))  # the caller's timeout lost
    assert future.result(0) == 5


class TestDoneCallbacks:
    def test_run_on_the_client_callback_thread(self, client: Client) -> None:
        future = client.call_async("calc", "add", (1, 1), timeout=0.2)
        ran_on: list[str] = []
        done = threading.Event()

        def callback(f: Any) -> None:
            ran_on.append(threading.current_thread().name)
            done.set()

        future.add_done_callback(callback)
        assert done.wait(10)
        assert ran_on == ["isc-callbacks"]
        assert isinstance(future.exception(0), TimeoutException)

    def test_run_in_order_and_one_that_blocks_delays_only_later_callbacks(
        self, client: Client
    ) -> None:
        release = threading.Event()
        order: list[int] = []
        first = client.call_async("calc", "add", (1, 1), timeout=0.1)
        second = client.call_async("calc", "add", (1, 1), timeout=0.1)
        first.add_done_callback(lambda f: (release.wait(10), order.append(1)))
        second.add_done_callback(lambda f: order.append(2))
        # The callbacks wait, the calls do not: a blocking call still ends at its timeout.
        with pytest.raises(TimeoutException):
            client.call("calc", "add", (1, 1), timeout=0.3)
        assert order == []
        release.set()
        wait_for(lambda: order == [1, 2], 10, "both callbacks, in order")

    def test_a_callback_may_stop_the_client(self, client: Client) -> None:
        future = client.call_async("calc", "add", (1, 1), timeout=0.1)
        stopped = threading.Event()
        future.add_done_callback(lambda f: (client.stop(), stopped.set()))
        assert stopped.wait(10)
        with pytest.raises(ClientClosedError):
            client.call("calc", "add", (1, 1), timeout=1)

    def test_a_future_made_by_hand_runs_callbacks_where_it_is_finished(self) -> None:
        future = FutureResult("x.y")
        ran_on: list[int] = []
        future.add_done_callback(lambda f: ran_on.append(threading.get_ident()))
        future.resolve(1)
        assert ran_on == [threading.get_ident()]

    def test_a_failing_callback_is_logged_and_the_next_one_runs(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        runner = CallbackRunner()
        ran = threading.Event()

        def boom(_: object) -> None:
            raise ValueError("boom")

        runner.submit(boom, None)
        runner.submit(lambda _: ran.set(), None)
        assert ran.wait(10)
        runner.close()
        assert any("boom" in r.exc_text for r in caplog.records if r.exc_text)


class TestPendingCallBound:
    def test_a_call_over_the_bound_is_refused_and_a_slot_frees_when_one_ends(self) -> None:
        client = Client(NOWHERE, reconnect_timeout=0, max_pending_calls=3)
        try:
            futures = [client.call_async("calc", "add", (n, 1), timeout=30) for n in range(3)]
            with pytest.raises(TooManyPendingCallsError, match="max_pending_calls"):
                client.call_async("calc", "add", (9, 1), timeout=30)
            with pytest.raises(TooManyPendingCallsError):
                client.calc.add(9, 1)
            assert client.pending_calls == 3
            assert futures[0].cancel()
            assert client.pending_calls == 2
            client.call_async("calc", "add", (9, 1), timeout=30)
            assert client.pending_calls == 3
        finally:
            client.stop()
        assert client.pending_calls == 0

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
    def test_the_bound_must_be_a_positive_int(self, bad: object) -> None:
        with pytest.raises(ConfigurationError, match="max_pending_calls"):
            Client(NOWHERE, max_pending_calls=bad)  # type: ignore[arg-type]


class TestDroppedClients:
    def test_a_dropped_started_client_warns_and_ends_its_thread(self) -> None:
        client = Client(NOWHERE, reconnect_timeout=0.2).start()
        worker = client._worker
        assert worker is not None
        assert worker._thread is not None
        thread = worker._thread
        alive = weakref.ref(client)
        with pytest.warns(ResourceWarning, match=r"without stop\(\)"):
            del client  # no reference cycle holds it: collected right here
        assert alive() is None
        thread.join(10)
        assert not thread.is_alive()
        assert worker.stopped.is_set()

    def test_a_stopped_or_unused_client_is_dropped_silently(self) -> None:
        stopped = Client(NOWHERE, reconnect_timeout=0).start()
        stopped.stop()
        unused = Client(NOWHERE)
        refs = [weakref.ref(stopped), weakref.ref(unused)]
        del stopped, unused
        gc.collect()  # filterwarnings=error: a ResourceWarning here fails the test
        assert [r() for r in refs] == [None, None]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_a_worker_of_its_own_and_leaves_the_parents_alone(
    client: Client,
) -> None:
    client.start()
    parent_worker = client._worker
    assert parent_worker is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report over the pipe, never return into pytest
        code = 1
        try:
            inherited = client._worker  # the parent's, untouched so far
            client.start()
            mine = client._worker
            ok = mine is not None and mine is not inherited and inherited is not None
            ok = ok and inherited.stopped.is_set() and mine._thread is not None
            ok = ok and mine._thread.is_alive()
            os.write(write, b"ok" if ok else b"bad")
            client.stop()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        report = os.read(read, 16)
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    assert report == b"ok"
    assert os.WEXITSTATUS(status) == 0
    # The parent's worker still runs on its own sockets and epoll.
    assert client._worker is parent_worker
    assert parent_worker._thread is not None
    assert parent_worker._thread.is_alive()
    with pytest.raises(TimeoutException):
        client.call("calc", "add", (1, 1), timeout=0.2)


def test_the_fork_generation_counts_forks_in_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _process.fork_generation()
    monkeypatch.setattr(_process, "_forks", before)
    _process._after_fork_in_child()
    assert _process.fork_generation() == before + 1
