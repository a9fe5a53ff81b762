"""The node's pika IOLoop on gevent's hub: persistent watchers, timers, thread-safe wake-ups."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import gevent
import gevent.event
import pytest
from pika.adapters.select_connection import IOLoop, PollEvents

import isc.server._node
from isc.client.internal import AmqpWorker, gevent_loop_types
from isc.server import Node

GeventIOLoop, GeventPoller = gevent_loop_types()

READ = PollEvents.READ
WRITE = PollEvents.WRITE
# Long enough that a missed wake-up fails the test instead of passing after pika's backstop.
GUARD = 20


@pytest.fixture
def loop() -> Iterator[GeventIOLoop]:
    ioloop = GeventIOLoop()
    # pika wakes every 5 s at the latest; the tests must not rely on that backstop.
    ioloop._poller._MAX_POLL_TIMEOUT = 3600
    yield ioloop
    ioloop.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def run(loop: GeventIOLoop) -> None:
    """Run the loop in a greenlet until it stops; fail instead of hanging."""
    runner = gevent.spawn(loop.start)
    try:
        runner.get(timeout=GUARD)
    finally:
        runner.kill()


def poller(loop: GeventIOLoop) -> GeventPoller:
    p = loop._poller
    assert isinstance(p, GeventPoller)
    return p


@pytest.mark.parametrize("fastpath", [None, False])
def test_the_node_runs_its_connection_on_the_gevent_loop(
    monkeypatch: pytest.MonkeyPatch, fastpath: bool | None
) -> None:
    """The node builds its worker on a GeventIOLoop; on stock pika (``fastpath=False``), on
    pika's own loop, which polls through gevent's ``select.poll`` emulation."""
    loops: list[object] = []

    class Built(Exception):
        """Stops ``Node.run`` right after the worker is made (no broker, no signals)."""

    def worker(*args: Any, **kwargs: Any) -> NoReturn:
        made = AmqpWorker(*args, **kwargs)
        loops.append(made._ioloop)
        raise Built

    monkeypatch.setattr(isc.server._node, "AmqpWorker", worker)
    with pytest.raises(Built):
        Node(fastpath=fastpath).run()
    [made] = loops
    try:
        if fastpath is None:
            assert isinstance(made, GeventIOLoop)
            assert isinstance(made._poller, GeventPoller)  # type: ignore[attr-defined]
        else:
            assert type(made) is IOLoop
    finally:
        made.close()  # type: ignore[attr-defined]


def test_a_readable_descriptor_calls_its_handler(
    loop: GeventIOLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    seen: list[int] = []

    def on_event(fd: int, events: int) -> None:
        seen.append(events)
        assert a.recv(10) == b"x"
        loop.stop()

    loop.add_handler(a.fileno(), on_event, READ)
    b.send(b"x")
    run(loop)
    assert seen == [READ]


def test_modify_switches_the_events_watched(
    loop: GeventIOLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    seen: list[int] = []

    def on_event(fd: int, events: int) -> None:
        seen.append(events)
        if events & WRITE:
            # Writable at once; now watch for reading only, and give it something to read.
            loop.update_handler(fd, READ)
            b.send(b"x")
        else:
            loop.stop()

    loop.add_handler(a.fileno(), on_event, WRITE)
    run(loop)
    assert seen == [WRITE, READ]
    assert poller(loop)._watchers == {}  # the loop deactivated its watchers on the way out


def test_unregister_stops_the_watcher(
    loop: GeventIOLoop, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    c, d = socket.socketpair()
    called: list[str] = []

    def on_a(fd: int, events: int) -> None:
        called.append("a")

    def on_c(fd: int, events: int) -> None:
        called.append("c")
        loop.stop()

    def start() -> None:
        p = poller(loop)
        loop.add_handler(a.fileno(), on_a, READ)
        loop.add_handler(c.fileno(), on_c, READ)
        assert a.fileno() in p._watchers
        loop.remove_handler(a.fileno())
        assert a.fileno() not in p._watchers
        b.send(b"x")  # both become readable before the hub polls again
        d.send(b"x")

    try:
        loop.add_callback_threadsafe(start)
        run(loop)
    finally:
        c.close()
        d.close()
    assert called == ["c"]


def test_timers_fire_and_cancelled_ones_do_not(loop: GeventIOLoop) -> None:
    fired: list[str] = []
    cancelled = loop.call_later(0.001, lambda: fired.append("cancelled"))
    loop.remove_timeout(cancelled)
    loop.call_later(0.002, lambda: (fired.append("second"), loop.stop()))
    loop.call_later(0.001, lambda: fired.append("first"))
    run(loop)
    assert fired == ["first", "second"]


def wake_test(loop: GeventIOLoop, wake: Callable[[Callable[[], None]], None]) -> None:
    done = gevent.event.Event()

    def callback() -> None:
        done.set()
        loop.stop()

    def waiting() -> None:
        # Only once the loop blocks (nothing ready, no timer) does the wake-up matter.
        wake(callback)

    runner = gevent.spawn(loop.start)
    gevent.spawn(waiting)
    try:
        runner.get(timeout=GUARD)
    finally:
        runner.kill()
    assert done.is_set()


def test_a_greenlet_wakes_the_loop(loop: GeventIOLoop) -> None:
    wake_test(loop, loop.add_callback_threadsafe)


def test_an_os_thread_wakes_the_loop(loop: GeventIOLoop) -> None:
    def from_thread(callback: Callable[[], None]) -> None:
        gevent.get_hub().threadpool.apply(loop.add_callback_threadsafe, (callback,))

    wake_test(loop, from_thread)


def test_a_wake_up_before_start_is_not_lost(loop: GeventIOLoop) -> None:
    ran: list[bool] = []
    loop.add_callback_threadsafe(lambda: (ran.append(True), loop.stop()))
    run(loop)
    assert ran == [True]
