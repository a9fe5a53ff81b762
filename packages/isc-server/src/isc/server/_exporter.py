"""The node's HTTP endpoint: Prometheus metrics and Kubernetes liveness and readiness probes.

One small WSGI application served by gevent's ``pywsgi`` on the node's hub, so it never
blocks the node (and answers only while the hub runs, which is what a liveness probe asks):

- ``GET /metrics``: the node's :class:`NodeMetrics` (through :class:`NodeCollector`) and
  whatever the given ``prometheus_client`` registry holds (by default its global one: the
  process metrics and any metric the services define), in Prometheus' text format.
- ``GET /healthz``: 200 while the node runs (its connection loop has not ended), else 503.
- ``GET /readyz``: 200 while the node is connected and consuming its queues, 503 while it
  connects, reconnects or stops.

``prometheus-client`` is the ``prometheus`` extra of isc-server; this module imports it only
when a server starts, so isc-server works without it.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from isc.core import ConfigurationError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from prometheus_client.registry import Collector

    from ._metrics import NodeMetrics

__all__ = ["DEFAULT_METRICS_HOST", "MetricsServer", "require_prometheus", "serve_metrics"]

log = logging.getLogger("isc.server.metrics")

#: Where the metrics endpoint listens by default: every interface, as a pod's probes need.
DEFAULT_METRICS_HOST = "0.0.0.0"
#: At most this many HTTP requests are served at once; more wait for the accept loop.
_MAX_CONCURRENT_REQUESTS = 16

_NEEDS_EXTRA = (
    "serving metrics needs prometheus-client: pip install 'isc-server[prometheus]' "
    "(or leave out metrics_port / --metrics-port)"
)


class ProbedNode(Protocol):
    """What the endpoint needs of a node (:class:`isc.server.Node` has it)."""

    metrics: NodeMetrics

    def is_alive(self) -> bool:
        """Whether the node runs: its liveness."""

    def is_ready(self) -> bool:
        """Whether the node consumes its queues: its readiness."""


def require_prometheus() -> None:
    """Raise :class:`ConfigurationError` unless ``prometheus_client`` can be imported."""
    if importlib.util.find_spec("prometheus_client") is None:
        raise ConfigurationError(_NEEDS_EXTRA)


class MetricsServer:
    """The running HTTP endpoint of a node (see :func:`serve_metrics`); :meth:`stop` it."""

    def __init__(self, server: Any) -> None:
        self._server = server
        #: The address it listens on.
        self.host: str = server.server_host
        #: The port it listens on (the one chosen by the system when asked for port 0).
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        """The base URL of the endpoint, e.g. ``http://0.0.0.0:9100``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 1.0) -> None:
        """Stop listening; requests in progress get ``timeout`` seconds to finish."""
        self._server.stop(timeout=timeout)


def serve_metrics(
    node: ProbedNode,
    port: int,
    host: str = DEFAULT_METRICS_HOST,
    *,
    registry: Collector | None = None,
) -> MetricsServer:
    """Serve ``node``'s ``/metrics``, ``/healthz`` and ``/readyz`` over HTTP on ``host:port``.

    ``node`` is a :class:`Node` (or anything with its ``metrics``, ``is_alive()`` and
    ``is_ready()``). Returns at once: the server runs in greenlets on the calling thread's
    gevent hub (the node's). ``registry``: the ``prometheus_client`` metrics served
    alongside the node's (default: ``prometheus_client.REGISTRY``, the process metrics and
    any metric defined without a registry). ``Node(metrics_port=...)`` calls this when the
    node starts.

    Raises :class:`ConfigurationError` without ``prometheus-client`` or when the port cannot
    be bound (in use, or not allowed).
    """
    require_prometheus()
    from gevent.pywsgi import WSGIServer
    from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

    from ._prometheus import NodeCollector

    served = CollectorRegistry()
    served.register(NodeCollector(node.metrics, ready=node.is_ready))
    served.register(_Also(REGISTRY if registry is None else registry))
    app = _ProbeApp(node, make_wsgi_app(served))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
            "choose another metrics port"
        ) from exc
    server = WSGIServer(listener, app, log=None, error_log=log, spawn=_MAX_CONCURRENT_REQUESTS)
    server.start()
    started = MetricsServer(server)
    log.info("serving metrics on %s/metrics, probes on /healthz and /readyz", started.url)
    return started


class _Also:
    """Another registry's metrics, served alongside the node's (no names: no clash check)."""

    def __init__(self, registry: Collector) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Any]:
        return self.registry.collect()


class _ProbeApp:
    """The WSGI application: the probes, and ``/metrics`` by prometheus_client's app."""

    def __init__(self, node: ProbedNode, metrics_app: WSGIApplication) -> None:
        self.node = node
        self.metrics_app = metrics_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return list(self.metrics_app(environ, start_response))
        if path == "/healthz":
            return _answer(start_response, self.node.is_alive(), b"alive\n", b"not running\n")
        if path == "/readyz":
            return _answer(start_response, self.node.is_ready(), b"ready\n", b"not ready\n")
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]


def _answer(start_response: StartResponse, ok: bool, yes: bytes, no: bytes) -> list[bytes]:
    status = "200 OK" if ok else "503 Service Unavailable"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [yes if ok else no]
