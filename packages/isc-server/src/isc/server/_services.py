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
    "ServiceTable",
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


def on(*events: str) -> Callable[[F], F]:
    """Run the method for every notification of ``events`` (``client.notify(event, ...)``).

    Stackable; every running node receives each notification once. The method is called with
    the notification's arguments.
    """
    if not events or not all(isinstance(e, str) and e for e in events):
        raise ConfigurationError(f"@on needs one or more event names, got {events!r}")

    def decorate(fn: F) -> F:
        listened: set[str] = getattr(fn, "__on__", set())
        fn.__on__ = listened | set(events)  # type: ignore[attr-defined]
        return fn

    return decorate


def local_timer(timeout: float) -> Callable[[F], F]:
    """Run the method every ``timeout`` seconds on each node (not once per cluster)."""
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigurationError(f"@local_timer needs a positive timeout, got {timeout!r}")

    def decorate(fn: F) -> F:
        timeouts: set[float] = getattr(fn, "__timeouts__", set())
        fn.__timeouts__ = timeouts | {float(timeout)}  # type: ignore[attr-defined]
        return fn

    return decorate


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
        """Event name → the bound methods listening for it, over every service."""
        table: dict[str, list[Callable[..., Any]]] = {}
        for service in self.services.values():
            for _name, member in _members(service):
                for event in sorted(getattr(member, "__on__", ())):
                    table.setdefault(event, []).append(member)
        return table

    def timers(self) -> list[tuple[float, str, Callable[[], Any]]]:
        """(period, "service.method", bound method) for every ``@local_timer``."""
        found = []
        for service_name, service in self.services.items():
            for name, member in _members(service):
                for period in sorted(getattr(member, "__timeouts__", ())):
                    found.append((period, f"{service_name}.{name}", member))
        return found

    def inspect(self, service_name: str) -> dict[str, Any]:
        """What ``_inspect`` answers: exposed methods with signatures, listeners and metrics.

        Signatures show parameter names, kinds and annotations, never default values (each
        default shows as ``...``). ``metrics`` (present when the table has a metrics source) is
        :meth:`NodeMetrics.snapshot` of the node that answered.
        """
        service = self.services[service_name]
        exposed = {}
        listeners = {}
        for name, member in _members(service):
            if getattr(member, "__exposed__", False):
                exposed[name] = _signature(member)
            events = getattr(member, "__on__", None)
            if events:
                listeners[name] = sorted(events)
        described: dict[str, Any] = {"exposed": exposed, "listeners": listeners}
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
