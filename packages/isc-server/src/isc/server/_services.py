"""Services as the node sees them: decorators, discovery, method lookup and argument checks.

Pure Python (no gevent, no AMQP), so the rules are unit-tested directly.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from isc.core import ConfigurationError, validate_service_name

__all__ = [
    "INSPECT_METHOD",
    "MethodError",
    "LISTENER_MODES",
    "ServiceTable",
    "cluster_timer",
    "expose",
    "local_timer",
    "on",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The reserved method every service answers: its exposed methods, listeners and metrics.
INSPECT_METHOD = "_inspect"
#: What a signature shows in place of each default value: defaults can hold secrets
#: (``dsn="postgres://admin:..."``), and whoever can publish to the broker may read signatures.
REDACTED_DEFAULT = "..."


def expose(fn: F) -> F:
    """Make a service method callable remotely (``client.<service>.<method>(...)``)."""
    fn.__exposed__ = True  # type: ignore[attr-defined]
    return fn


#: The delivery modes of ``@on``: ``broadcast`` (every running node, isclib 1.x's) and
#: ``service`` (once per service, from a durable queue; see docs/delivery-modes.md).
LISTENER_MODES = ("broadcast", "service")
#: How many times a ``mode="service"`` listener that raises is retried by default before the
#: notification is dead-lettered.
DEFAULT_RETRIES = 3


def on(*events: str, mode: str = "broadcast", retries: int = DEFAULT_RETRIES) -> Callable[[F], F]:
    """Run the method for notifications of ``events`` (``client.notify(event, ...)``).

    Stackable; the method is called with the notification's arguments. ``mode`` says which
    nodes run it:

    * ``"broadcast"`` (the default, isclib 1.x's): every running node, once each; a node that
      is down or reconnecting misses the notification.
    * ``"service"``: one node of the service, once per notification, from a durable queue
      that keeps notifications while no node runs. The message is acked after the method
      returns (at-least-once); a method that raises is retried up to ``retries`` times, then
      the notification is dead-lettered to a named queue. See docs/delivery-modes.md.
    """
    if not events or not all(isinstance(e, str) and e for e in events):
        raise ConfigurationError(f"@on needs one or more event names, got {events!r}")
    if mode not in LISTENER_MODES:
        raise ConfigurationError(
            f"@on mode must be one of {', '.join(LISTENER_MODES)}, got {mode!r}"
        )
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ConfigurationError(f"@on retries must be an int >= 0, got {retries!r}")

    def decorate(fn: F) -> F:
        modes: dict[str, tuple[str, int]] = dict(getattr(fn, "__on_modes__", {}))
        for event in events:
            known = modes.get(event)
            if known is not None and known[0] != mode:
                raise ConfigurationError(
                    f"{_qualname(fn)} listens for {event!r} in mode {known[0]!r} already; "
                    f"one method has one mode per event (use another method for {mode!r})"
                )
            modes[event] = (mode, retries)
        listened: set[str] = getattr(fn, "__on__", set())
        fn.__on__ = listened | set(events)  # type: ignore[attr-defined]
        fn.__on_modes__ = modes  # type: ignore[attr-defined]
        return fn

    return decorate


def local_timer(timeout: float) -> Callable[[F], F]:
    """Run the method every ``timeout`` seconds on each node (see :func:`cluster_timer` for
    once per cluster)."""
    _check_timeout("@local_timer", timeout)

    def decorate(fn: F) -> F:
        timeouts: set[float] = getattr(fn, "__timeouts__", set())
        fn.__timeouts__ = timeouts | {float(timeout)}  # type: ignore[attr-defined]
        return fn

    return decorate


def cluster_timer(timeout: float) -> Callable[[F], F]:
    """Run the method every ``timeout`` seconds on one node of the service across the cluster.

    The node that ticks holds a lease (a token message on a single-active-consumer queue per
    timer); when it stops or dies, another node of the service takes the lease and ticks
    from one ``timeout`` later, so the ticks go on within two intervals. One per method.
    See docs/delivery-modes.md.
    """
    _check_timeout("@cluster_timer", timeout)

    def decorate(fn: F) -> F:
        known = getattr(fn, "__cluster_timeout__", None)
        if known is not None and known != float(timeout):
            raise ConfigurationError(
                f"{_qualname(fn)} has a @cluster_timer already ({known}s): one per method"
            )
        fn.__cluster_timeout__ = float(timeout)  # type: ignore[attr-defined]
        return fn

    return decorate


def _check_timeout(decorator: str, timeout: object) -> None:
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigurationError(f"{decorator} needs a positive timeout, got {timeout!r}")


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))


def listener_mode(fn: Callable[..., Any], event: str) -> tuple[str, int]:
    """(mode, retries) of listener ``fn`` for ``event`` (isclib 1.x's ``__on__`` alone:
    broadcast)."""
    modes: dict[str, tuple[str, int]] = getattr(fn, "__on_modes__", None) or {}
    return modes.get(event, ("broadcast", DEFAULT_RETRIES))


class ServiceListener:
    """A ``mode="service"`` listener: ``fn`` of service ``service`` for ``event``."""

    __slots__ = ("event", "fn", "method", "retries", "service")

    def __init__(
        self, service: str, method: str, event: str, fn: Callable[..., Any], retries: int
    ) -> None:
        self.service = service
        self.method = method
        self.event = event
        self.fn = fn
        self.retries = retries


class MethodError(Exception):
    """A request names a method that cannot be called, or calls it with wrong arguments.

    ``type_name`` is what the caller sees as the remote exception type; ``known_method`` is
    True when the method exists and is exposed (the arguments were wrong).
    """

    def __init__(self, message: str, type_name: str, known_method: bool = False) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.known_method = known_method


def _members(service: object) -> Iterator[tuple[str, Any]]:
    for name in dir(service):
        try:
            yield name, getattr(service, name)
        except Exception:  # a property that raises: not a method
            continue


class ServiceTable:
    """The services a node hosts, by name, with their listeners and timers.

    ``allow_inspect=False`` refuses the reserved ``_inspect`` method, which otherwise tells
    any caller the exposed methods' signatures, the listeners and the node's metrics.
    """

    def __init__(
        self,
        exchange: str,
        metrics: Callable[[str], dict[str, Any]] | None = None,
        *,
        allow_inspect: bool = True,
    ) -> None:
        self.exchange = exchange
        self.services: dict[str, object] = {}
        #: Whether ``_inspect`` answers (else it is refused with a ``PermissionError``).
        self.allow_inspect = allow_inspect
        #: service name -> its metrics, for ``_inspect`` (the node's ``NodeMetrics.snapshot``)
        self.metrics = metrics
        #: (service, method) -> (the function, its signature): computing a signature costs
        #: more than the rest of a call's dispatch, and a method's signature does not change.
        self._signatures: dict[tuple[str, str], tuple[object, _Arity]] = {}

    def register(self, service: object) -> str:
        """Add ``service`` (any object with a ``name``); a duplicate name is an error."""
        name = getattr(service, "name", None)
        if not isinstance(name, str):
            raise ConfigurationError(
                f"{service!r} has no 'name' attribute: a service is an object with a name"
            )
        validate_service_name(self.exchange, name)
        if name in self.services:
            raise ConfigurationError(f"Service {name} is already registered.")
        self.services[name] = service
        return name

    def method(
        self, service_name: str, method_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Callable[..., Any]:
        """The bound method to call, after checking it is exposed and the arguments fit."""
        service = self.services.get(service_name)
        if service is None:
            raise MethodError(f"Service {service_name} is not hosted here.", "LookupError")
        if method_name == INSPECT_METHOD:
            if not self.allow_inspect:
                raise MethodError(
                    f"{INSPECT_METHOD} is turned off on this node (allow_inspect=False, "
                    "isc run --no-inspect).",
                    "PermissionError",
                )
            return lambda: self.inspect(service_name)
        fn = getattr(service, method_name, None)
        if fn is None or not callable(fn):
            raise MethodError(f"Could not find method {method_name}.", "AttributeError")
        if not getattr(fn, "__exposed__", False):
            raise MethodError(
                f"You are not allowed to call unexposed method {method_name}.", "PermissionError"
            )
        try:
            positional = self._signature_of(service_name, method_name, fn)
            if kwargs or not positional.accepts(len(args)):
                positional.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise MethodError(
                f"Wrong arguments for {service_name}.{method_name}{_signature(fn)}: {exc}",
                "TypeError",
                known_method=True,
            ) from None
        except ValueError:  # no signature available (a builtin): let the call decide
            pass
        return fn  # type: ignore[no-any-return]

    def _signature_of(self, service_name: str, method_name: str, fn: Callable[..., Any]) -> _Arity:
        # Keyed on the underlying function too, so a method replaced at run time is re-read.
        func = getattr(fn, "__func__", fn)
        cached = self._signatures.get((service_name, method_name))
        if cached is not None and cached[0] is func:
            return cached[1]
        arity = _Arity(inspect.signature(fn))  # ValueError (no signature) is not cached
        self._signatures[(service_name, method_name)] = (func, arity)
        return arity

    def listeners(self) -> dict[str, list[Callable[..., Any]]]:
        """Event name → the bound methods listening for it in ``broadcast`` mode, over every
        service."""
        table: dict[str, list[Callable[..., Any]]] = {}
        for service in self.services.values():
            for _name, member in _members(service):
                for event in sorted(getattr(member, "__on__", ())):
                    if listener_mode(member, event)[0] == "broadcast":
                        table.setdefault(event, []).append(member)
        return table

    def all_listeners(self) -> dict[str, list[Callable[..., Any]]]:
        """Event name → the bound methods listening for it in any mode, over every service."""
        table: dict[str, list[Callable[..., Any]]] = {}
        for service in self.services.values():
            for _name, member in _members(service):
                for event in sorted(getattr(member, "__on__", ())):
                    table.setdefault(event, []).append(member)
        return table

    def service_listeners(self) -> list[ServiceListener]:
        """Every ``mode="service"`` listener, one per (service, method, event)."""
        found = []
        for service_name, service in self.services.items():
            for name, member in _members(service):
                for event in sorted(getattr(member, "__on__", ())):
                    mode, retries = listener_mode(member, event)
                    if mode == "service":
                        found.append(ServiceListener(service_name, name, event, member, retries))
        return found

    def timers(self) -> list[tuple[float, str, Callable[[], Any]]]:
        """(period, "service.method", bound method) for every ``@local_timer``."""
        found = []
        for service_name, service in self.services.items():
            for name, member in _members(service):
                for period in sorted(getattr(member, "__timeouts__", ())):
                    found.append((period, f"{service_name}.{name}", member))
        return found

    def cluster_timers(self) -> list[tuple[float, str, Callable[[], Any]]]:
        """(period, "service.method", bound method) for every ``@cluster_timer``."""
        found = []
        for service_name, service in self.services.items():
            for name, member in _members(service):
                period = getattr(member, "__cluster_timeout__", None)
                if isinstance(period, float):
                    found.append((period, f"{service_name}.{name}", member))
        return found

    def inspect(self, service_name: str) -> dict[str, Any]:
        """What ``_inspect`` answers: exposed methods with signatures, listeners, timers and
        metrics.

        ``listeners`` maps each listener to its events, as isclib 1.x answers;
        ``listener_modes`` maps it to ``{event: mode}``, and ``timers`` each timer method to
        its ``[{"timeout": seconds, "scope": "local" | "cluster"}]``. Signatures show
        parameter names, kinds and annotations, never default values (each default shows as
        ``...``). ``metrics`` (present when the table has a metrics source) is
        :meth:`NodeMetrics.snapshot` of the node that answered.
        """
        service = self.services[service_name]
        exposed = {}
        listeners = {}
        modes = {}
        timers: dict[str, list[dict[str, Any]]] = {}
        for name, member in _members(service):
            if getattr(member, "__exposed__", False):
                exposed[name] = _signature(member)
            events = getattr(member, "__on__", None)
            if events:
                listeners[name] = sorted(events)
                modes[name] = {event: listener_mode(member, event)[0] for event in sorted(events)}
            for period in sorted(getattr(member, "__timeouts__", None) or ()):
                timers.setdefault(name, []).append({"timeout": period, "scope": "local"})
            period = getattr(member, "__cluster_timeout__", None)
            if isinstance(period, float):
                timers.setdefault(name, []).append({"timeout": period, "scope": "cluster"})
        described: dict[str, Any] = {
            "exposed": exposed,
            "listeners": listeners,
            "listener_modes": modes,
            "timers": timers,
        }
        if self.metrics is not None:
            described["metrics"] = self.metrics(service_name)
        return described


class _Arity:
    """A method's signature, and how many positional arguments alone it accepts.

    ``accepts(n)`` answers the common case (positional arguments only) without
    ``Signature.bind``, which costs several microseconds per request.
    """

    __slots__ = ("maximum", "minimum", "signature")

    def __init__(self, signature: inspect.Signature) -> None:
        self.signature = signature
        kinds = inspect.Parameter
        positional = [
            p
            for p in signature.parameters.values()
            if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        ]
        required_keyword = any(
            p.kind is kinds.KEYWORD_ONLY and p.default is p.empty
            for p in signature.parameters.values()
        )
        varargs = any(p.kind is kinds.VAR_POSITIONAL for p in signature.parameters.values())
        #: Fewest and most positional arguments a call without keywords may pass (-1: the
        #: method needs a keyword argument, so no such call fits).
        self.minimum = -1 if required_keyword else sum(p.default is p.empty for p in positional)
        self.maximum = sys.maxsize if varargs else len(positional)

    def accepts(self, count: int) -> bool:
        """Whether ``count`` positional arguments and no keywords certainly fit."""
        return 0 <= self.minimum <= count <= self.maximum


class _Redacted:
    """Stands for a default value in a shown signature: its repr is :data:`REDACTED_DEFAULT`."""

    def __repr__(self) -> str:
        return REDACTED_DEFAULT


_REDACTED = _Redacted()


def _signature(fn: Callable[..., Any]) -> str:
    """``fn``'s signature as text for remote callers and logs, default values redacted."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(...)"
    parameters = [
        p if p.default is p.empty else p.replace(default=_REDACTED)
        for p in signature.parameters.values()
    ]
    return str(signature.replace(parameters=parameters))
