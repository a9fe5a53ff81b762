"""The ``isc`` command: call services, send notifications, inspect and ping from a shell.

    isc call SERVICE.METHOD [ARG ...] [--kwargs JSON] [--timeout S]
    isc notify EVENT [ARG ...] [--kwargs JSON]
    isc inspect SERVICE[.METHOD] [--json] [--timeout S]
    isc ping
    isc run module:Class [module:Class ...] [--pool N] [--listener-pool N] [--allow-pickle]
        [--no-inspect] (needs isc-server)
    isc --version

Every command takes ``--url`` and ``--exchange`` (else ``ISC_URL`` / ``ISC_EXCHANGE``, else
the defaults); ``--url`` and ``ISC_URL`` may list several brokers, comma-separated (the members
of a cluster: the command connects to one that answers). Arguments are parsed as JSON; a
value that is not valid JSON is a string, except one that starts with ``{`` or ``[``, which is
a usage error.
Exit codes: 0 success, 1 failure (remote error, unreachable broker), 2 usage error or timeout.

This module uses only the standard library and the isc client packages: it never imports
gevent, except that ``isc run`` imports ``isc.server`` (which monkey-patches) first thing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from isc.codecs import CODECS, get_codec
from isc.core import (
    DEFAULT_EXCHANGE,
    DEFAULT_URL,
    AccessRefusedError,
    CodecNotAllowedError,
    ConfigurationError,
    IscError,
    NoNodeConsumingError,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
    check_broker_urls,
    redact_url,
    split_broker_urls,
)

from ._client import Client
from ._version import __version__

__all__ = [
    "ENV_URL",
    "ENV_EXCHANGE",
    "DEFAULT_CODEC",
    "Settings",
    "build_parser",
    "estimate_quantile",
    "format_inspection",
    "parse_value",
    "resolve_settings",
    "main",
]

#: The environment variable naming the broker URL (``--url`` wins over it).
ENV_URL = "ISC_URL"
#: The environment variable naming the isc exchange (``--exchange`` wins over it).
ENV_EXCHANGE = "ISC_EXCHANGE"
#: The codec used for requests unless ``--codec`` says otherwise.
DEFAULT_CODEC = "typedjson"
#: Seconds the client waits for the broker before giving up (``--connect-timeout``).
DEFAULT_CONNECT_WAIT = 3.0
#: Seconds ``isc call`` and ``isc inspect`` wait for the reply (``--timeout``).
DEFAULT_CALL_TIMEOUT = 20.0
#: A service nobody serves: ``isc ping`` and ``isc notify`` time a request the broker returns.
_PING_SERVICE = "isc-cli-ping"
#: The reserved method every isc node answers with a description of its service.
_INSPECT_METHOD = "_inspect"
_RUN_NEEDS_SERVER = "isc run needs isc-server: pip install isc-server"
#: How a node is told to accept pickle, as the refusals of ``--codec pickle`` name it.
_ALLOW_PICKLE = "isc run --allow-pickle"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 2


class Settings(NamedTuple):
    """Where to connect: the broker URL and the isc exchange."""

    url: str
    exchange: str


class _CliError(Exception):
    """A failure reported as one ``error: ...`` line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def parse_value(text: str) -> Any:
    """A command-line argument as JSON (``1``, ``true``, ``[1, 2]``), else as the string.

    Text that starts with ``{`` or ``[`` is meant as an object or array: when it is not valid
    JSON, :class:`ValueError` says where, instead of passing a mistyped value on as a string.
    """
    try:
        return json.loads(text)
    except ValueError as exc:
        if text.lstrip()[:1] in ("{", "["):
            raise ValueError(
                f"argument {text!r} starts like a JSON object or array but is not valid JSON "
                f"({exc}); fix it, or pass a string as JSON ('\"...\"')"
            ) from None
        return text


def _parse_values(texts: Sequence[str]) -> list[Any]:
    """The positional arguments as values, or a usage error naming the malformed one."""
    try:
        return [parse_value(text) for text in texts]
    except ValueError as exc:
        raise _CliError(str(exc), EXIT_USAGE) from None


def resolve_settings(
    url: str | None, exchange: str | None, environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings from flags, then ``ISC_URL`` / ``ISC_EXCHANGE``, then the defaults.

    An empty flag or environment variable counts as not given. Raises
    :class:`~isc.core.ConfigurationError` (one line, naming where the URL came from and the
    expected form, never its password) for a URL that is not ``amqp://`` or ``amqps://``.
    """
    env = os.environ if environ is None else environ
    source = "--url"
    if not url:
        url, source = env.get(ENV_URL, "").strip(), f"${ENV_URL}"
    try:
        checked = ",".join(check_broker_urls(url or DEFAULT_URL))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None
    return Settings(
        url=checked,
        exchange=exchange or env.get(ENV_EXCHANGE, "").strip() or DEFAULT_EXCHANGE,
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--kwargs is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--kwargs must be a JSON object, got {text}")
    return value


def _service_method(text: str) -> tuple[str, str]:
    service, dot, method = text.rpartition(".")
    if not dot or not service or not method:
        raise argparse.ArgumentTypeError(f"expected SERVICE.METHOD, got {text!r}")
    return service, method


def build_parser() -> argparse.ArgumentParser:
    """The ``isc`` argument parser with its subcommands (``call``, ``notify``, ...)."""
    parser = argparse.ArgumentParser(
        prog="isc",
        description="Call isc services, send notifications and run nodes over RabbitMQ.",
        epilog=f"Settings: --url, else ${ENV_URL}, else {redact_url(DEFAULT_URL)}; "
        f"--exchange, else ${ENV_EXCHANGE}, else {DEFAULT_EXCHANGE!r}.",
    )
    parser.add_argument(
        "--version", action="version", version=f"isc {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    where = argparse.ArgumentParser(add_help=False)
    group = where.add_argument_group("connection")
    group.add_argument(
        "--url",
        help="the broker URL, or several comma-separated (the members of a cluster; one that "
        f"answers is used) (default: ${ENV_URL} or {redact_url(DEFAULT_URL)})",
    )
    group.add_argument(
        "--exchange", help=f"the isc exchange (default: ${ENV_EXCHANGE} or {DEFAULT_EXCHANGE!r})"
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", help="log the client's activity to stderr"
    )

    client = argparse.ArgumentParser(add_help=False)
    group = client.add_argument_group("client")
    group.add_argument(
        "--codec",
        default=DEFAULT_CODEC,
        choices=sorted(CODECS),
        help=f"the codec of the requests (default: {DEFAULT_CODEC}); nodes refuse pickle "
        f"unless started with {_ALLOW_PICKLE}",
    )
    group.add_argument(
        "--connect-timeout",
        type=_positive_float,
        default=DEFAULT_CONNECT_WAIT,
        metavar="S",
        help=f"seconds to wait for the broker (default: {DEFAULT_CONNECT_WAIT:g})",
    )

    call = sub.add_parser(
        "call",
        parents=[where, client],
        help="call a method and print its result as JSON",
        description="Call SERVICE.METHOD with the arguments (JSON, else strings) and print "
        "the result as JSON.",
    )
    call.add_argument("target", type=_service_method, metavar="SERVICE.METHOD")
    # default=[]: without it argparse names ARG among "the following arguments are required"
    call.add_argument(
        "args", nargs="*", default=[], metavar="ARG", help="a JSON value, else a string"
    )
    call.add_argument("--kwargs", type=_json_object, default={}, metavar="JSON")
    call.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_CALL_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for the reply (default: {DEFAULT_CALL_TIMEOUT:g})",
    )

    notify = sub.add_parser(
        "notify",
        parents=[where, client],
        help="broadcast an event to every node",
        description="Broadcast EVENT with the arguments to every node listening for it.",
    )
    notify.add_argument("event", metavar="EVENT")
    notify.add_argument(
        "args", nargs="*", default=[], metavar="ARG", help="a JSON value, else a string"
    )
    notify.add_argument("--kwargs", type=_json_object, default={}, metavar="JSON")

    inspect = sub.add_parser(
        "inspect",
        parents=[where, client],
        help="describe a service or one method (signatures, events and metrics)",
        description="Call the reserved _inspect method of SERVICE and print its methods, "
        "listeners and the metrics of the node that answered; with SERVICE.METHOD, only "
        "that method.",
    )
    inspect.add_argument("service", metavar="SERVICE[.METHOD]")
    inspect.add_argument(
        "--json", action="store_true", help="print the raw answer as JSON instead of a table"
    )
    inspect.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_CALL_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for the reply (default: {DEFAULT_CALL_TIMEOUT:g})",
    )

    sub.add_parser(
        "ping",
        parents=[where, client],
        help="check that the broker is reachable",
        description="Connect to the broker and report the connection time and a round trip.",
    )

    run = sub.add_parser(
        "run",
        parents=[where],
        help="run a node hosting services (needs isc-server)",
        description="Run a node hosting the services (module:Class, importable from the "
        "current directory) until SIGTERM or SIGINT.",
    )
    run.add_argument("services", nargs="+", metavar="module:Class")
    run.add_argument(
        "--pool",
        type=_positive_int,
        default=8,
        metavar="N",
        help="how many calls run at once (default: 8)",
    )
    run.add_argument(
        "--listener-pool",
        type=_positive_int,
        default=None,
        metavar="N",
        help="how many @on listeners run at once (default: as --pool)",
    )
    run.add_argument(
        "--max-queued-notifications",
        type=_positive_int,
        default=None,
        metavar="N",
        help="listener runs that may wait for a free listener; more are dropped and "
        "counted (default: 1000)",
    )
    run.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept the pickle codec (only when every peer on the broker is trusted)",
    )
    run.add_argument(
        "--queue-type",
        choices=("auto", "legacy", "durable", "quorum"),
        default="auto",
        help="how service queues are declared: auto (isclib 1.x's transient queues where the "
        "broker allows them, else durable), legacy, durable or quorum (default: auto)",
    )
    run.add_argument(
        "--no-inspect",
        dest="allow_inspect",
        action="store_false",
        help="refuse the reserved _inspect method (signatures, listeners, metrics)",
    )
    run.add_argument(
        "--drain-timeout",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds in-flight calls may take to finish when stopping (default: 10)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus /metrics and the /healthz and /readyz probes over HTTP on "
        "PORT (needs isc-server[prometheus])",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``isc`` command line with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = resolve_settings(args.url, args.exchange)
    except ConfigurationError as exc:
        _error(str(exc))
        return EXIT_USAGE
    args.url, args.exchange = settings.url, settings.exchange
    if args.command == "run":
        return _run(args)
    _configure_logging(args.verbose)
    try:
        return _COMMANDS[args.command](args)
    except _CliError as exc:
        _error(str(exc))
        return exc.code


# -- commands ---------------------------------------------------------------------------------


def _call(args: argparse.Namespace) -> int:
    service, method = args.target
    values = _parse_values(args.args)
    with _connect(args) as client:
        try:
            result = client.call(service, method, tuple(values), args.kwargs, timeout=args.timeout)
        except IscError as exc:
            return _report(exc)
    print(json.dumps(result, default=str))
    return EXIT_OK


def _notify(args: argparse.Namespace) -> int:
    values = _parse_values(args.args)
    with _connect(args) as client:
        try:
            client.notify(args.event, *values, **args.kwargs)
            # The broker answers a later request on the same channel only after it has taken
            # the notification: waiting for that answer means it was sent before we close.
            _round_trip(client)
        except IscError as exc:
            return _report(exc)
    print(f"notified {args.event!r}")
    return EXIT_OK


def _inspect(args: argparse.Namespace) -> int:
    service, method = args.service, None
    with _connect(args) as client:
        try:
            try:
                result = client.call(service, _INSPECT_METHOD, timeout=args.timeout)
            except ServiceNotFoundError as exc:
                # Service names may contain dots: SERVICE first, then SERVICE.METHOD.
                service, dot, method = args.service.rpartition(".")
                if isinstance(exc, NoNodeConsumingError) or not dot or not service or not method:
                    raise  # (its queue exists: the name is a service, whose nodes stopped)
                try:
                    result = client.call(service, _INSPECT_METHOD, timeout=args.timeout)
                except ServiceNotFoundError:
                    raise _CliError(
                        f"no node serves {args.service!r} nor {service!r}: expected SERVICE or "
                        "SERVICE.METHOD (is the node running, on this --exchange?)"
                    ) from None
        except IscError as exc:
            return _report(exc)
    if method is not None:
        result = _one_method(service, method, result)
    if args.json:
        print(json.dumps(result, default=str, indent=2, sort_keys=True))
    else:
        print(format_inspection(service, result))
    return EXIT_OK


def _one_method(service: str, method: str, described: Mapping[str, Any]) -> dict[str, Any]:
    """``_inspect``'s answer narrowed to ``method`` (its signature, events and metrics)."""
    exposed = described.get("exposed") or {}
    listeners = described.get("listeners") or {}
    timers = described.get("timers") or {}
    if method not in exposed and method not in listeners and method not in timers:
        known = ", ".join(sorted({*exposed, *listeners, *timers})) or "none"
        raise _CliError(f"service {service!r} exposes no method {method!r} (it has: {known})")
    narrowed: dict[str, Any] = {
        key: {k: v for k, v in (described.get(key) or {}).items() if k == method}
        for key in ("exposed", "listeners", "listener_modes", "timers")
        if key in described
    }
    metrics = described.get("metrics")
    if isinstance(metrics, Mapping):
        narrowed["metrics"] = {
            **metrics,
            **{
                key: {k: v for k, v in (metrics.get(key) or {}).items() if k == method}
                for key, _kind in _KINDS
            },
        }
    return narrowed


def _ping(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    with _connect(args) as client:
        connected = time.perf_counter() - started
        try:
            round_trip = _round_trip(client)
        except IscError as exc:
            return _report(exc)
    print(
        f"broker {redact_url(args.url)} reachable (exchange {args.exchange!r}): "
        f"connected in {connected * 1000:.1f} ms, round trip {round_trip * 1000:.1f} ms"
    )
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    # isc.server applies gevent's monkey patching on import: it comes before anything else.
    try:
        import isc.server  # noqa: F401
    except ImportError:
        print(_RUN_NEEDS_SERVER, file=sys.stderr)
        return EXIT_FAILURE
    from isc.server.cli_run import run

    return run(args)


_COMMANDS = {"call": _call, "notify": _notify, "inspect": _inspect, "ping": _ping}


# -- inspect output ---------------------------------------------------------------------------

#: Handler kinds of the ``_inspect`` metrics, as the table names them.
_KINDS = (("methods", "method"), ("listeners", "listener"), ("timers", "timer"))


def estimate_quantile(
    bounds: Sequence[float], buckets: Sequence[int], q: float, largest: float | None = None
) -> float | None:
    """The ``q``-quantile (0..1) of a histogram, interpolated linearly inside its bucket.

    ``buckets[i]`` counts values in ``(bounds[i-1], bounds[i]]``; the extra last bucket counts
    values above ``bounds[-1]``. ``largest``, the largest value if known, caps the estimate
    and stands for the values of the last bucket, which are otherwise ``math.inf``. None for
    no values.
    """
    total = sum(buckets)
    if total <= 0:
        return None
    cap = math.inf if largest is None else largest
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(bounds):
                return cap
            lower = bounds[index - 1] if index else 0.0
            return min(cap, lower + (bounds[index] - lower) * (rank - seen) / count)
        seen += count
    return cap  # pragma: no cover - rank <= total always stops the loop


def _seconds(value: float | None, bounds: Sequence[float] = ()) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return f">{_seconds(bounds[-1])}" if bounds else "?"
    if value < 0.001:
        return f"{value * 1e6:.0f}us"
    if value < 1:
        return f"{value * 1000:.3g}ms"
    return f"{value:.3g}s"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n]
    return " ".join(shown[:2]) or "0s"


def _with_mode(event: str, mode: object) -> str:
    """An event as ``isc inspect`` lists it: with its delivery mode unless broadcast."""
    return event if mode in (None, "broadcast") else f"{event} ({mode})"


def format_inspection(service: str, described: Mapping[str, Any]) -> str:
    """``_inspect``'s answer for ``service`` as text: methods, listeners, a metrics table."""
    lines = [f"service {service}"]
    exposed = described.get("exposed") or {}
    lines.append("  exposed methods:" if exposed else "  exposed methods: none")
    lines.extend(f"    {name}{signature}" for name, signature in sorted(exposed.items()))
    listeners = described.get("listeners") or {}
    modes = described.get("listener_modes") or {}
    lines.append("  listeners:" if listeners else "  listeners: none")
    for name, events in sorted(listeners.items()):
        mode_of = modes.get(name) or {}
        shown = [_with_mode(str(event), mode_of.get(event)) for event in events]
        lines.append(f"    {name}: {', '.join(shown)}")
    if "timers" in described:  # isc 2 nodes answer it (isclib 1.x's do not)
        timers = described.get("timers") or {}
        lines.append("  timers:" if timers else "  timers: none")
        for name, entries in sorted(timers.items()):
            shown = [
                f"every {float(t.get('timeout', 0)):g}s ({t.get('scope', '?')})" for t in entries
            ]
            lines.append(f"    {name}: {', '.join(shown)}")
    metrics = described.get("metrics")
    if not isinstance(metrics, Mapping):
        lines.append("")
        lines.append("no metrics: the node that answered does not keep them (isclib 1.x?)")
        return "\n".join(lines)
    node = metrics.get("node") or {}
    lines.append("")
    lines.append(
        f"metrics of the node that answered ({node.get('host', '?')}, pid {node.get('pid', '?')})"
        f" over {_duration(float(metrics.get('uptime', 0)))}:"
    )
    bounds = [float(b) for b in metrics.get("buckets") or ()]
    header = ("kind", "handler", "calls", "errors", "refused", "mean", "p50", "p99", "max")
    rows: list[tuple[str, ...]] = []
    for key, kind in _KINDS:
        for name, stats in sorted((metrics.get(key) or {}).items()):
            calls = int(stats.get("calls", 0))
            buckets = [int(n) for n in stats.get("buckets") or ()]
            mean = float(stats.get("seconds", 0.0)) / calls if calls else None
            largest = float(stats["max"]) if calls and "max" in stats else None
            rows.append(
                (
                    kind,
                    str(name),
                    str(calls),
                    str(stats.get("errors", 0)),
                    str(stats.get("refused", 0)),
                    _seconds(mean),
                    _seconds(estimate_quantile(bounds, buckets, 0.5, largest), bounds),
                    _seconds(estimate_quantile(bounds, buckets, 0.99, largest), bounds),
                    _seconds(largest),
                )
            )
    if rows:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            cells = [
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths))
            ]
            lines.append("  " + "  ".join(cells).rstrip())
    else:
        lines.append("  nothing handled yet")
    lines.append(f"  calls of unknown or private methods: {metrics.get('unknown_methods', 0)}")
    dropped = metrics.get("dropped") or {}
    counts = ", ".join(f"{name} {n}" for name, n in sorted(dropped.items()) if n) or "none"
    lines.append(f"  dropped or unanswerable messages (whole node): {counts}")
    return "\n".join(lines)


# -- helpers ----------------------------------------------------------------------------------


def _configure_logging(verbose: bool) -> None:
    """Quiet by default: the client's reconnect warnings would bury the one-line errors."""
    if verbose:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        return
    for name in ("isc", "pika"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())  # no "last resort" output to stderr


def _connect(args: argparse.Namespace) -> Client:
    """A started client, connected within ``--connect-timeout`` or a one-line error."""
    try:
        codec = get_codec(args.codec)
        client = Client(
            args.url,
            exchange=args.exchange,
            codec=codec,
            connect_timeout=args.connect_timeout,
            reconnect_timeout=1,
        )
    except IscError as exc:
        raise _CliError(str(exc), EXIT_USAGE) from None
    try:
        connected = client.wait_connected(args.connect_timeout)
    except AccessRefusedError as exc:
        client.stop()
        raise _CliError(str(exc)) from None
    if connected:
        return client
    worker = client._worker
    reason = worker.last_error if worker is not None else None
    client.stop()
    detail = ""
    if reason is not None:
        text = str(reason).strip()
        described = f"{type(reason).__name__}: {text}" if text else type(reason).__name__
        detail = f" ({_scrub(described, args.url)})"
    raise _CliError(
        f"cannot connect to {redact_url(args.url)} within {args.connect_timeout:g}s{detail}: "
        f"is RabbitMQ running? check --url / {ENV_URL}"
    )


def _round_trip(client: Client, timeout: float = 5.0) -> float:
    """Seconds for a request nobody serves to come back from the broker (unroutable)."""
    started = time.perf_counter()
    # ServiceNotFoundError (the broker returned it), or a node answered: both are fine.
    with contextlib.suppress(RemoteException):
        client.call(_PING_SERVICE, "ping", timeout=timeout)
    return time.perf_counter() - started


def _report(exc: IscError) -> int:
    """Print ``exc`` as one line; the exit code for it."""
    if isinstance(exc, ServiceNotFoundError):
        _error(str(exc))
        return EXIT_FAILURE
    if isinstance(exc, RemoteException):
        message = f"{exc.remote_type or type(exc).__name__}: {exc}"
        refused_codec = (exc.remote_type or "").endswith(CodecNotAllowedError.__name__)
        if refused_codec and _ALLOW_PICKLE not in message:  # nodes older than the hint
            message += f" (the node must run with {_ALLOW_PICKLE})"
        _error(message)
        return EXIT_FAILURE
    if isinstance(exc, TimeoutException):
        _error(f"timed out: {exc} (raise --timeout if the method is slow)")
        return EXIT_TIMEOUT
    _error(f"{type(exc).__name__}: {exc}")
    return EXIT_FAILURE


def _scrub(text: str, url: str) -> str:
    """``text`` with the password of ``url`` (of each, for several) masked."""
    for one in split_broker_urls(url):
        try:
            password = urlsplit(one).password
        except ValueError:
            continue
        if password:
            for form in {password, unquote(password)}:
                text = text.replace(form, "***")
    return text


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
