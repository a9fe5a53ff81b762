"""Services hosted by the suite's node subprocesses."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from isc.server import expose, local_timer, on, run_blocking


class Calc:
    """Arithmetic, errors and slow calls: the RPC behaviours of the seed documentation."""

    name = "calc"

    @expose
    def add(self, a: Any, b: Any, wait: float = 0) -> Any:
        if wait:
            time.sleep(wait)  # gevent-patched: other calls run meanwhile
        return a + b

    @expose
    def echo(self, *args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    @expose
    def raise_error(self) -> None:
        raise Exception("testing")

    @expose
    def raise_empty(self) -> None:
        raise ValueError()

    def private_method(self) -> str:
        return "Cannot call me!"

    def __init__(self) -> None:
        self.in_flight = 0

    @expose
    def slow_method(self, seconds: float = 3) -> float:
        self.in_flight += 1
        try:
            time.sleep(seconds)
        finally:
            self.in_flight -= 1
        return seconds

    @expose
    def running(self) -> int:
        return self.in_flight

    @expose
    def pid(self) -> int:
        return os.getpid()

    @expose
    def log(self, message: str) -> None:
        """Log ``message`` from service code (its log line names this call)."""
        logging.getLogger("calc").warning("%s", message)


class Events:
    """Records notifications and timer ticks so tests can ask for them."""

    name = "events"

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.ticks = 0

    @on("boom")
    @on("bang")
    def record(self, *args: Any, **kwargs: Any) -> None:
        self.received.append([list(args), kwargs])

    @on("boom")
    def fail_on_boom(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a failing listener must not stop the others")

    @local_timer(timeout=0.2)
    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % 2:
            raise RuntimeError("a failing tick must not stop the timer")

    @expose
    def get_received(self) -> list[Any]:
        return self.received

    @expose
    def get_ticks(self) -> int:
        return self.ticks

    @expose
    def report(self) -> list[Any]:
        """[this node's pid, what it received]: one call, so both come from one node."""
        return [os.getpid(), self.received]


class QuietEvents(Events):
    """:class:`Events` without its failing timer: for tests that read the node's log and
    expect no traceback in it."""

    def tick(self) -> None:  # a plain method here: no @local_timer
        self.ticks += 1


class Relay:
    """Calls another service from inside a node: a Client in a gevent-patched process."""

    name = "relay"

    def __init__(self) -> None:
        from isc.client import Client

        self.client = Client(os.environ["ISC_URL"], exchange=os.environ["ISC_EXCHANGE"])

    @expose
    def add_via_calc(self, a: Any, b: Any) -> Any:
        return self.client.calc.add(a, b)

    @expose
    def notify(self, event: str, *args: Any) -> None:
        self.client.notify(event, *args)

    @expose
    def call_via(self, service: str, method: str, timeout: float, *args: Any) -> Any:
        """Call ``service.method(*args)`` with this node's Client, with ``timeout``."""
        return self.client.call(service, method, args, timeout=timeout)


#: What the hooks saw, in order, answered by Hooked.calls() (which they do not record).
HOOK_CALLS: list[Any] = []


def pre_call(method: str, args: Any, kwargs: Any) -> None:
    """A pre_call hook: records the call."""
    if method != "calls":
        HOOK_CALLS.append(["pre_call", method, list(args)])


def post_success(method: str, args: Any, kwargs: Any, result: Any) -> None:
    """A post_success hook: records the result."""
    if method != "calls":
        HOOK_CALLS.append(["post_success", method, list(result)])


def post_error(method: str, args: Any, kwargs: Any, exc: BaseException) -> None:
    """A post_error hook: records the error."""
    HOOK_CALLS.append(["post_error", method, str(exc)])


class Hooked:
    """A service whose node runs the hooks above."""

    name = "hooked"

    @expose
    def double(self, x: int) -> int:
        return 2 * x

    @expose
    def fail(self) -> None:
        raise KeyError("nope")

    @expose
    def calls(self) -> list[Any]:
        return HOOK_CALLS


class Work:
    """Fault-suite work: reports which process ran a call and how many calls started here."""

    name = "work"

    def __init__(self) -> None:
        self.started = 0

    @expose
    def work(self, seconds: float) -> int:
        """Sleep (cooperatively) and return this node's pid."""
        self.started += 1
        print(f"work-started {os.getpid()}", flush=True)  # lets tests count without a call
        time.sleep(seconds)
        return os.getpid()

    @expose
    def started_count(self) -> int:
        return self.started

    @expose
    def spin(self, seconds: float) -> int:
        """Keep a CPU busy for ``seconds``, the documented way: in a real thread."""
        return run_blocking(_spin, seconds)

    @expose
    def spin_inline(self, seconds: float) -> int:
        """Keep the CPU busy on the node's own loop: what the documentation warns against."""
        return _spin(seconds)

    @expose
    def blob(self, size: int) -> str:
        return "x" * size


class Gated:
    """Listeners that wait behind a gate the test opens, so it sees them busy and queued."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()  # gevent's, under the node's monkey patching
        self.running = 0
        self.finished = 0
        self.calls = 0

    @on("gated")
    def wait_at_gate(self, timeout: float) -> None:
        self.running += 1
        try:
            self.gate.wait(timeout)
        finally:
            self.running -= 1
            self.finished += 1

    @on("open_gate")
    def open_on_event(self) -> None:
        """Open the gate from a notification: it arrives even when every call slot is taken."""
        self.gate.set()

    @expose
    def wait(self, timeout: float) -> int:
        """A call that waits at the gate; returns this node's pid."""
        self.calls += 1
        print(f"gated-call-started {self.calls}", flush=True)  # tests count without a call
        self.gate.wait(timeout)
        return os.getpid()

    @expose
    def state(self) -> dict[str, int]:
        """Listeners waiting at the gate now, listeners finished, and calls started."""
        return {"running": self.running, "finished": self.finished, "calls": self.calls}

    @expose
    def open(self) -> None:
        self.gate.set()


def _spin(seconds: float) -> int:
    end = time.monotonic() + seconds
    loops = 0
    while time.monotonic() < end:
        loops += 1
    return loops
