"""TaskPool: the node's requests and listeners in greenlets, at most ``size`` at once."""

from __future__ import annotations

import logging

import gevent
import gevent.event
import pytest

from isc.server._tasks import TaskPool

GUARD = 10  # seconds: a bound for waits that should end at once


def test_tasks_run_in_greenlets_of_their_own() -> None:
    pool = TaskPool(4)
    ran_in: list[object] = []
    pool.spawn(lambda: ran_in.append(gevent.getcurrent()))
    assert len(pool) == 1
    assert pool.join(GUARD)
    assert len(pool) == 0
    assert len(ran_in) == 1
    assert ran_in[0] is not gevent.getcurrent()


def test_spawn_waits_for_a_free_slot() -> None:
    pool = TaskPool(2)
    release = gevent.event.Event()
    started: list[int] = []

    def task(n: int) -> None:
        started.append(n)
        release.wait(GUARD)

    pool.spawn(task, 1)
    pool.spawn(task, 2)
    third = gevent.spawn(pool.spawn, task, 3)
    gevent.sleep(0.05)
    assert started == [1, 2]
    assert not third.dead  # still waiting for a slot
    release.set()
    third.join(GUARD)
    assert pool.join(GUARD)
    assert sorted(started) == [1, 2, 3]


def test_join_times_out_while_a_task_runs() -> None:
    pool = TaskPool(1)
    release = gevent.event.Event()
    pool.spawn(release.wait, GUARD)
    assert not pool.join(0.05)
    release.set()
    assert pool.join(GUARD)


def test_a_failing_task_is_logged_and_frees_its_slot(caplog: pytest.LogCaptureFixture) -> None:
    pool = TaskPool(1)

    def boom() -> None:
        raise RuntimeError("bug")

    with caplog.at_level(logging.ERROR, logger="isc.server"):
        pool.spawn(boom)
        assert pool.join(GUARD)
    assert "failed" in caplog.text
    assert "bug" in caplog.text
    pool.spawn(lambda: None)  # the slot is free again
    assert pool.join(GUARD)


def test_kill_stops_running_and_pending_tasks_and_frees_every_slot() -> None:
    pool = TaskPool(2)
    finished: list[str] = []

    def forever(name: str) -> None:
        gevent.sleep(GUARD)
        finished.append(name)

    pool.spawn(forever, "started")
    gevent.sleep(0)  # the first task starts and sleeps
    pool.spawn(forever, "never started")
    pool.kill(timeout=GUARD)
    assert len(pool) == 0
    assert finished == []
    for _ in range(2):
        pool.spawn(lambda: None)  # both slots are free
    assert pool.join(GUARD)
