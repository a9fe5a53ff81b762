"""Run an isc node hosting the given service classes: the test suite's node subprocess.

    python -m isc_testing.serve URL EXCHANGE module:Class [module:Class ...]
        [--allow-pickle] [--pool N] [--codec NAME ...] [--max-message-size BYTES]
        [--queue-type legacy|durable|quorum]
        [--listener-pool N] [--max-queued-notifications N]

gevent's monkey patching happens first (``import isc.server``). Prints ``isc-node-ready`` on
stdout once the node consumes its queues; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any

import gevent

import isc.server
from isc.codecs import get_codec

READY_LINE = "isc-node-ready"


def _load(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def main() -> None:
    """Parse the arguments, build the node, serve until stopped."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("exchange")
    parser.add_argument("services", nargs="+", help="module:Class to instantiate and host")
    parser.add_argument("--allow-pickle", action="store_true")
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--codec", action="append", dest="codecs")
    parser.add_argument("--drain-timeout", type=float, default=10.0)
    parser.add_argument("--max-message-size", type=int, default=None)
    parser.add_argument("--queue-type", default="legacy")
    parser.add_argument("--listener-pool", type=int, default=None)
    parser.add_argument("--max-queued-notifications", type=int, default=None)
    parser.add_argument("--hook", action="append", default=[], help="NAME=module:function")
    args = parser.parse_args()
    # Services that call other services (a Client inside a node) find the broker here.
    os.environ["ISC_URL"] = args.url
    os.environ["ISC_EXCHANGE"] = args.exchange
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pika").setLevel(logging.WARNING)
    node = isc.server.Node(
        url=args.url,
        exchange=args.exchange,
        thread_pool_size=args.pool,
        allow_pickle=args.allow_pickle,
        codecs=[get_codec(name) for name in args.codecs] if args.codecs else None,
        drain_timeout=args.drain_timeout,
        queue_type=args.queue_type,
        **({"max_message_size": args.max_message_size} if args.max_message_size else {}),
        **({"listener_pool_size": args.listener_pool} if args.listener_pool else {}),
        **(
            {"max_queued_notifications": args.max_queued_notifications}
            if args.max_queued_notifications is not None
            else {}
        ),
    )
    for spec in args.services:
        node.register_service(_load(spec)())
    for hook in args.hook:
        name, _, spec = hook.partition("=")
        node.add_hook(name, _load(spec))

    def announce() -> None:
        if node.wait_for_ready(30):
            print(READY_LINE, flush=True)

    gevent.spawn(announce)
    node.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
