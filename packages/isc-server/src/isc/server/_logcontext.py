"""Which call a log line belongs to: the service, method and correlation id being handled.

The node binds them (a :mod:`contextvars` variable) while it runs a call, a notification
handler or a timer tick. Every call runs in a greenlet of its own, and each greenlet has its
own context, so concurrent calls never see each other's values. :class:`LogContextFilter`
copies them onto log records; add it to a handler to use them in its format.
"""

from __future__ import annotations

import contextvars
import logging

__all__ = [
    "LOG_CONTEXT_ATTRIBUTES",
    "LOG_FORMAT",
    "LogContextFilter",
    "bind_log_context",
    "log_context",
]

#: The log line format of ``isc run`` and of a node that logs to stderr because its program
#: configured no logging: lines logged while handling a call, notification or timer tick
#: (by isc or by the service's code) name it, e.g.
#: ``... INFO    app [calc.add 6a0c...-...]: adding`` (see :class:`LogContextFilter`).
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(isc_context)s: %(message)s"

#: The attributes :class:`LogContextFilter` adds to every log record.
LOG_CONTEXT_ATTRIBUTES = ("isc_service", "isc_method", "isc_correlation_id", "isc_context")

#: Outside any call, the attributes hold this.
_NONE = "-"

_CONTEXT: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar(
    "isc_log_context", default=None
)


def bind_log_context(
    service: str, method: str, correlation_id: str = ""
) -> contextvars.Token[tuple[str, str, str] | None]:
    """Mark the log lines of the current greenlet (or thread) as belonging to this call.

    Returns a token for :func:`unbind_log_context`.
    """
    return _CONTEXT.set((service, method, correlation_id))


def log_context() -> tuple[str, str, str] | None:
    """(service, method, correlation id) of the call being handled here, or None."""
    return _CONTEXT.get()


def unbind_log_context(token: contextvars.Token[tuple[str, str, str] | None]) -> None:
    """Undo :func:`bind_log_context`."""
    _CONTEXT.reset(token)


class LogContextFilter(logging.Filter):
    """Adds ``isc_service``, ``isc_method``, ``isc_correlation_id`` and ``isc_context`` to records.

    Add it to a **handler** (``handler.addFilter(LogContextFilter())``), not to a logger: a
    handler sees the records of every logger, your service code's included, while a logger's
    filters skip the records its children propagate. Outside a call the first three are ``-``
    and ``isc_context`` is empty; inside, ``isc_context`` is `` [service.method correlation-id]``
    (with a leading space), made to sit right after ``%(name)s`` in a format. Never drops a
    record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the attributes on ``record``; always True."""
        context = _CONTEXT.get()
        if context is None:
            record.isc_service = record.isc_method = record.isc_correlation_id = _NONE
            record.isc_context = ""
            return True
        service, method, cid = context
        record.isc_service = service
        record.isc_method = method
        record.isc_correlation_id = cid or _NONE
        record.isc_context = f" [{service}.{method} {cid}]" if cid else f" [{service}.{method}]"
        return True
