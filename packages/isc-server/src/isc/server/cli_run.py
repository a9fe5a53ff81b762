"""``isc run``: host services given as ``module:Class`` on a node, from the command line.

The ``isc`` command (``isc.client.cli``) imports this module only for ``isc run``; importing
it imports ``isc.server`` first, which applies gevent's monkey patching.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any

import gevent

from isc.core import IscError, redact_url

from ._logcontext import LOG_FORMAT, LogContextFilter
from ._node import Node

__all__ = ["LOG_FORMAT", "load_service", "run"]

log = logging.getLogger("isc.server.cli")

#: How long ``isc run`` waits for the first connection before saying it is still trying.
_READY_NOTICE_AFTER = 10.0


def load_service(spec: str) -> Any:
    """Import ``module:Class`` and return a new instance of the class."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"expected module:Class, got {spec!r}")
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part)
    return target()


def _node_options(args: argparse.Namespace) -> dict[str, Any]:
    """The optional node settings given on the command line, as ``Node`` keyword arguments."""
    options: dict[str, Any] = {}
    listener_pool = getattr(args, "listener_pool", None)
    if listener_pool is not None:
        options["listener_pool_size"] = listener_pool
    max_queued = getattr(args, "max_queued_notifications", None)
    if max_queued is not None:
        options["max_queued_notifications"] = max_queued
    allow_inspect = getattr(args, "allow_inspect", None)
    if allow_inspect is not None:
        options["allow_inspect"] = allow_inspect
    return options


def run(args: argparse.Namespace) -> int:
    """Run a node with the services ``args.services`` until SIGTERM or SIGINT; the exit code.

    ``args`` carries ``services``, ``url``, ``exchange``, ``pool``, ``allow_pickle`` and
    ``drain_timeout`` (as parsed by ``isc run``), and may carry ``listener_pool``,
    ``max_queued_notifications``, ``queue_type``, ``metrics_port`` and ``allow_inspect``
    (the node's defaults when absent or ``None``). Exits with 1 when the node cannot start
    (e.g. its metrics port is taken), or stops by itself because the broker refused its
    credentials or its queue type (the node logged why, in one line).
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:  # every record gets the isc_* attributes
        handler.addFilter(LogContextFilter())
    logging.getLogger("pika").setLevel(logging.WARNING)
    # ``isc run mymodule:MyService`` finds mymodule.py in the current directory.
    cwd = os.getcwd()
    if sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)
    # Services that call other services (a Client inside a node) find the broker here.
    os.environ["ISC_URL"] = args.url
    os.environ["ISC_EXCHANGE"] = args.exchange
    try:
        node = Node(
            url=args.url,
            exchange=args.exchange,
            thread_pool_size=args.pool,
            allow_pickle=args.allow_pickle,
            drain_timeout=args.drain_timeout,
            queue_type=getattr(args, "queue_type", None) or "auto",
            metrics_port=getattr(args, "metrics_port", None),
            **_node_options(args),
        )
        for spec in args.services:
            node.register_service(load_service(spec))
    except (ImportError, AttributeError, ValueError, TypeError, IscError) as exc:
        log.error("cannot start the node: %s: %s", type(exc).__name__, exc)
        return 1

    def announce() -> None:
        if node.wait_for_ready(_READY_NOTICE_AFTER):
            log.info("node ready; stop it with SIGTERM or Ctrl-C")
            return
        log.warning(
            "still not connected to %s after %.0fs (is RabbitMQ running? check --url / "
            "ISC_URL); retrying",
            redact_url(args.url),
            _READY_NOTICE_AFTER,
        )
        if node.wait_for_ready():
            log.info("node ready; stop it with SIGTERM or Ctrl-C")

    watcher = gevent.spawn(announce)
    try:
        node.run()
    except IscError as exc:
        if node.failure is None:  # else the broker refused the node for good, and it said why
            log.error("cannot start the node: %s", exc)  # e.g. the metrics port is taken
        return 1
    finally:
        watcher.kill(block=False)
    return 0
