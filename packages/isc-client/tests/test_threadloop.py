"""The shared I/O loop: other threads may use it while it waits, or drive it (no broker)."""

from __future__ import annotations

import socket
import sys
import threading
import types
from collections.abc import Iterator

import pytest
from pika.adapters.select_connection import PollEvents

from isc.client import _fastpath, _process
from isc.client._fastpath import SharedIOLoop, shared_ioloop

pytestmark = pytest.mark.skipif(not hasattr(_fastpath.select, "epoll"), reason="needs epoll")


class Running:
    """A SharedIOLoop running on its own thread, with a socket pair watched for reading."""

    def __init__(self) -> None:
        self.loop = SharedIOLoop()
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.read_on: list[int] = []  # the thread that handled each readable event
        self.handled = threading.Event()
        self.loop.add_handler(self.reader.fileno(), self._on_readable, PollEvents.READ)
        self.thread = threading.Thread(target=self.loop.start, daemon=True)

    def _on_readable(self, fd: int, events: int) -> None:
        self.reader.recv(100)
        self.read_on.append(threading.get_ident())
        self.handled.set()

    def waiting(self) -> None:
        """Block until the loop thread waits for I/O (it holds the lock otherwise)."""
        for _ in range(200):
            if self.loop._poller.waiting_until:
                return
            threading.Event().wait(0.01)
        raise AssertionError("the loop never started waiting")


@pytest.fixture
def running() -> Iterator[Running]:
    r = Running()
    r.thread.start()
    r.waiting()
    yield r
    r.loop.add_callback_threadsafe(r.loop.stop)
    r.thread.join(5)
    r.loop.close()
    r.reader.close()
    r.writer.close()


def test_a_waiting_loop_can_be_entered_and_holds_its_events_until_released(
    running: Running,
) -> None:
    assert running.loop.lock.acquire(timeout=5)
    try:
        assert not running.loop.in_loop()
        running.writer.send(b"x")
        # The loop thread wakes up but must not dispatch while this thread holds the lock.
        assert not running.handled.wait(0.2)
    finally:
        running.loop.lock.release()
    assert running.handled.wait(5)
    assert running.read_on == [running.thread.ident]


def test_a_driving_thread_handles_the_events_itself_then_hands_the_loop_back(
    running: Running,
) -> None:
    assert running.loop.lock.acquire(timeout=5)
    try:
        running.writer.send(b"x")
        assert running.loop.drive(running.handled.is_set, 5)
    finally:
        running.loop.lock.release()
    assert running.read_on == [threading.get_ident()]  # not the loop thread's
    running.handled.clear()
    running.writer.send(b"y")  # after drive() the loop thread gets the events again
    assert running.handled.wait(5)
    assert running.read_on[1] == running.thread.ident


def test_the_driver_is_in_the_loop_while_it_drives(running: Running) -> None:
    seen: list[bool] = []
    with running.loop.lock:
        running.loop.add_callback_threadsafe(lambda: None)  # the driver runs it at once

        def until() -> bool:
            seen.append(running.loop.in_loop())
            return len(seen) > 1

        running.loop.drive(until, 5)
    assert seen == [True, True]
    assert not running.loop.in_loop()


class Driver:
    """A thread driving the running loop until ``stop`` is set (or 30 s pass)."""

    def __init__(self, running: Running, timeout: float = 30.0) -> None:
        self.stop = threading.Event()
        self.result: list[bool] = []
        self.loop = running.loop
        self.thread = threading.Thread(target=self._drive, args=(timeout,), daemon=True)
        self.thread.start()

    def _drive(self, timeout: float) -> None:
        with self.loop.lock:
            self.result.append(self.loop.drive(self.stop.is_set, timeout))

    def waiting(self) -> None:
        """Block until the driver waits for I/O (it holds the lock otherwise)."""
        for _ in range(500):
            if self.loop._poller.driver_waiting_until:
                return
            threading.Event().wait(0.01)
        raise AssertionError("the driver never started waiting")


def test_drive_gives_up_at_its_timeout(running: Running) -> None:
    driver = Driver(running, timeout=0.1)  # its condition never comes true
    driver.thread.join(10)  # without the timeout it would drive for ever
    assert not driver.thread.is_alive()
    assert driver.result == [True]
    assert not running.loop.driven


def test_a_driver_lets_go_of_the_lock_while_it_waits(running: Running) -> None:
    driver = Driver(running)
    driver.waiting()
    assert running.loop.driven
    # Another caller may take the lock (to publish) while the driver waits...
    assert running.loop.lock.acquire(timeout=5)
    try:
        # ...but not drive too: one driver at a time, the others wait for their futures.
        assert not running.loop.drive(lambda: False, 5)
    finally:
        running.loop.lock.release()
    driver.stop.set()
    running.writer.send(b"x")  # an event wakes the driver, which sees its condition
    driver.thread.join(10)
    assert driver.result == [True]
    assert running.read_on == [driver.thread.ident]  # the driver read it, not the loop


def test_the_loop_thread_may_end_the_loop_while_a_driver_waits(running: Running) -> None:
    driver = Driver(running)
    driver.waiting()
    running.loop.add_callback_threadsafe(running.loop.stop)  # e.g. Client.stop()
    driver.thread.join(10)
    assert not driver.thread.is_alive()
    assert driver.result == [True]
    running.thread.join(10)
    assert not running.thread.is_alive()


def test_a_timer_added_from_outside_wakes_the_loop_when_it_is_due_first(
    running: Running,
) -> None:
    fired = threading.Event()
    with running.loop.lock:  # the loop waits up to 5 s (pika's longest wait): too long
        running.loop.call_later(0.01, fired.set)
        running.loop.wake_if_later_than(_fastpath.time.monotonic() + 0.01)
    assert fired.wait(3)


def test_a_loop_that_is_not_running_cannot_be_driven() -> None:
    loop = SharedIOLoop()
    try:
        with loop.lock:
            assert not loop.drive(lambda: False, 0.01)
    finally:
        loop.close()


def test_no_shared_loop_under_gevent_monkey_patching(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("gevent.monkey")
    fake.is_module_patched = lambda name: name == "select"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gevent.monkey", fake)
    monkeypatch.setattr(_process, "_patched", False)  # the answer is cached once positive
    assert _process.gevent_patched()
    assert shared_ioloop() is None


def test_a_shared_loop_without_gevent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "gevent.monkey", raising=False)
    monkeypatch.setattr(_process, "_patched", False)
    loop = shared_ioloop()
    assert isinstance(loop, SharedIOLoop)
    loop.close()


def test_a_loop_stopped_by_its_driver_ends_its_thread_at_once(running: Running) -> None:
    with running.loop.lock:
        running.loop.add_callback_threadsafe(running.loop.stop)  # e.g. Client.stop()
        running.loop.drive(lambda: False, 5)
    running.thread.join(2)  # the loop thread waits up to 5 s unless it is woken
    assert not running.thread.is_alive()
