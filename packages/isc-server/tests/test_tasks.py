"""TaskPool: requests or listeners in greenlets, at most ``size`` at once, never waiting."""

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


def test_spawn_never_waits_when_every_slot_is_taken() -> None:
    pool = TaskPool(2)
    release = gevent.event.Event()
    started: list[int] = []

    def task(n: int) -> None:
        started.append(n)
        release.wait(GUARD)

    assert pool.spawn(task, 1)
    assert pool.spawn(task, 2)
    # The node's I/O loop calls spawn: with both slots taken it must return, not wait.
    with gevent.Timeout(GUARD):
        assert pool.spawn(task, 3)
        assert pool.spawn(task, 4)
    gevent.sleep(0)  # the first two start
    assert started == [1, 2]
    assert (pool.running, pool.queued, len(pool)) == (2, 2, 4)
    release.set()
    assert pool.join(GUARD)
    assert started == [1, 2, 3, 4]  # queued tasks ran in order, in the freed slots
    assert (pool.running, pool.queued, len(pool)) == (0, 0, 0)


def test_queued_tasks_never_run_more_than_size_at_once() -> None:
    pool = TaskPool(3)
    running = 0
    most = 0

    def task() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        gevent.sleep(0.001)
        running -= 1

    for _ in range(20):
        assert pool.spawn(task)
    assert pool.join(GUARD)
    assert most == 3


def test_a_bounded_backlog_refuses_tasks_once_full() -> None:
    pool = TaskPool(1, max_queued=2)
    release = gevent.event.Event()
    ran: list[int] = []

    def task(n: int) -> None:
        ran.append(n)
        release.wait(GUARD)

    assert pool.room() == 3
    assert pool.spawn(task, 1)  # runs
    assert pool.spawn(task, 2)  # waits
    assert pool.spawn(task, 3)  # waits
    assert pool.room() == 0
    with gevent.Timeout(GUARD):
        assert not pool.spawn(task, 4)  # refused at once: the newest is the one dropped
    assert pool.queued == 2
    release.set()
    assert pool.join(GUARD)
    assert ran == [1, 2, 3]
    assert pool.room() == 3


def test_a_zero_backlog_refuses_whenever_every_slot_is_taken() -> None:
    pool = TaskPool(1, max_queued=0)
    release = gevent.event.Event()
    assert pool.spawn(release.wait, GUARD)
    assert not pool.spawn(release.wait, GUARD)
    release.set()
    assert pool.join(GUARD)
    assert pool.spawn(lambda: None)
    assert pool.join(GUARD)


def test_an_unbounded_backlog_takes_every_task() -> None:
    pool = TaskPool(1)
    release = gevent.event.Event()
    assert pool.room() is None
    for _ in range(100):
        assert pool.spawn(release.wait, GUARD)
    assert pool.queued == 99
    release.set()
    assert pool.join(GUARD)


def test_join_waits_for_queued_tasks_too() -> None:
    pool = TaskPool(1)
    release = gevent.event.Event()
    ran: list[str] = []
    pool.spawn(release.wait, GUARD)
    pool.spawn(ran.append, "queued")
    assert not pool.join(0.05)
    release.set()
    assert pool.join(GUARD)
    assert ran == ["queued"]


def test_clear_queued_forgets_waiting_tasks_only() -> None:
    pool = TaskPool(1)
    release = gevent.event.Event()
    ran: list[str] = []

    def first() -> None:
        release.wait(GUARD)
        ran.append("running")

    pool.spawn(first)
    pool.spawn(ran.append, "queued 1")
    pool.spawn(ran.append, "queued 2")
    assert pool.clear_queued() == 2
    release.set()
    assert pool.join(GUARD)
    assert ran == ["running"]
    assert pool.room() is None
    assert pool.spawn(lambda: None)  # the slot is free again
    assert pool.join(GUARD)


def test_a_pool_needs_a_slot_and_a_non_negative_backlog() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        TaskPool(0)
    with pytest.raises(ValueError, match="max_queued"):
        TaskPool(1, max_queued=-1)


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
    pool.spawn(forever, "queued")
    assert pool.kill(timeout=GUARD) == 1  # the queued task was forgotten
    assert len(pool) == 0
    assert finished == []
    ran: list[int] = []
    for n in range(2):
        pool.spawn(ran.append, n)  # both slots are free
    assert pool.queued == 0
    assert pool.join(GUARD)
    assert ran == [0, 1]


def test_spawn_unbounded_queues_past_the_backlog_bound() -> None:
    pool = TaskPool(1, max_queued=1)
    release = gevent.event.Event()
    ran: list[int] = []

    def task(n: int) -> None:
        ran.append(n)
        release.wait(GUARD)

    assert pool.spawn(task, 1)  # runs
    assert pool.spawn(task, 2)  # waits: the backlog is full
    with gevent.Timeout(GUARD):
        pool.spawn_unbounded(task, 3)  # never refused (a prefetch bounds such work)
    assert pool.queued == 2
    assert pool.room() == 0  # bounded work finds no room, never a negative one
    assert not pool.spawn(task, 4)
    release.set()
    assert pool.join(GUARD)
    assert ran == [1, 2, 3]
