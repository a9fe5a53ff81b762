"""Log records carry the service, method and correlation id of the call being handled."""

from __future__ import annotations

import logging

import gevent
import pytest

from isc.server import LogContextFilter
from isc.server._logcontext import bind_log_context, log_context, unbind_log_context


class Records(logging.Handler):
    """Keeps the records it handles, formatted with the isc attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(
            logging.Formatter(
                "%(name)s%(isc_context)s|%(isc_service)s|%(isc_method)s|%(isc_correlation_id)s"
                ": %(message)s"
            )
        )
        self.addFilter(LogContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def records() -> Records:
    handler = Records()
    logger = logging.getLogger("app.logcontext")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler  # type: ignore[misc]
    logger.removeHandler(handler)


def test_outside_a_call(records: Records) -> None:
    logging.getLogger("app.logcontext").info("idle")
    assert records.lines == ["app.logcontext|-|-|-: idle"]


def test_inside_a_call_and_after(records: Records) -> None:
    token = bind_log_context("calc", "add", "cid-1")
    # a child logger's record reaches the handler through propagation, filtered there
    logging.getLogger("app.logcontext.child").info("adding")
    assert log_context() == ("calc", "add", "cid-1")
    unbind_log_context(token)
    logging.getLogger("app.logcontext").info("done")
    assert records.lines == [
        "app.logcontext.child [calc.add cid-1]|calc|add|cid-1: adding",
        "app.logcontext|-|-|-: done",
    ]


def test_a_timer_tick_has_no_correlation_id(records: Records) -> None:
    token = bind_log_context("calc", "tick")
    logging.getLogger("app.logcontext").info("tick")
    unbind_log_context(token)
    assert records.lines == ["app.logcontext [calc.tick]|calc|tick|-: tick"]


def test_concurrent_greenlets_keep_their_own_context(records: Records) -> None:
    log = logging.getLogger("app.logcontext")

    def handle(n: int) -> None:
        bind_log_context("calc", f"m{n}", f"cid-{n}")  # each greenlet starts with no context
        gevent.sleep(0.01)  # the others bind theirs meanwhile
        log.info("call %d", n)

    gevent.joinall([gevent.spawn(handle, n) for n in range(3)], raise_error=True)
    assert sorted(records.lines) == [
        f"app.logcontext [calc.m{n} cid-{n}]|calc|m{n}|cid-{n}: call {n}" for n in range(3)
    ]
    assert log_context() is None  # nothing leaked into this greenlet


def test_the_filter_never_drops() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    assert LogContextFilter().filter(record) is True
