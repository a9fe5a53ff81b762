"""``python -m isc.testing``: a throwaway RabbitMQ node for as long as this process runs.

Prints ``ISC_TEST_AMQP_URL=<url>`` on stdout once the node answers an AMQP handshake, then
runs until end of input (the parent closes the pipe), Ctrl-C or SIGTERM, and deletes the node.
``scripts/run_matrix.py`` uses it to give a whole test matrix one broker.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .rabbitmq import BrokerError, RabbitMQNode

READY_PREFIX = "ISC_TEST_AMQP_URL="


def _set_at_end_of_input(done: threading.Event) -> None:
    sys.stdin.read()
    done.set()


def main(argv: list[str] | None = None) -> int:
    """Boot a node, print its URL, wait for the end of input or a signal, close the node."""
    parser = argparse.ArgumentParser(prog="python -m isc.testing", description=__doc__)
    parser.add_argument("--boot-timeout", type=float, default=90.0)
    args = parser.parse_args(argv)
    if not RabbitMQNode.available():
        print("error: rabbitmq-server is not installed (/usr/lib/rabbitmq/bin)", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        node = RabbitMQNode.launch(boot_timeout=args.boot_timeout)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"{READY_PREFIX}{node.amqp_url}", flush=True)
        threading.Thread(target=_set_at_end_of_input, args=(done,), daemon=True).start()
        done.wait()
    finally:
        node.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
