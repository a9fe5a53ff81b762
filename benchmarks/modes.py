"""Event throughput per delivery mode: one node, one listener of each mode (``make bench``).

For each mode, publishes ``--count`` notifications (each confirmed by the broker, as
``Client.notify`` does) and times from the first publish until the node's listener has run
for every one; prints notifications per second per round and the median. The node is
``integration-tests/services/modes.py``'s ``Counter``; the broker is ``ISC_URL`` or a
throwaway RabbitMQ.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pika

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration-tests"))

from isc.client import Client  # noqa: E402
from isc.core import redact_url  # noqa: E402
from isc.core.naming import dead_letter_queue_name, listener_queue_name  # noqa: E402
from isc_testing import wait_for  # noqa: E402
from isc_testing.broker import RabbitMQNode  # noqa: E402
from isc_testing.nodes import NodeProcess  # noqa: E402

EXCHANGE = "bench-modes"
RESULTS = HERE / "results"


@contextmanager
def broker() -> Iterator[str]:
    """``ISC_URL`` if set, else a throwaway RabbitMQ node for the duration."""
    url = os.environ.get("ISC_URL")
    if url:
        yield url
        return
    node = RabbitMQNode.launch()
    try:
        yield node.amqp_url
    finally:
        node.close()


def one_round(client: Client, mode: str, count: int) -> float:
    """Notifications per second through ``mode``'s listener, first publish to last run."""
    before = client.counter.counts()[mode]
    started = time.perf_counter()
    for n in range(count):
        client.notify(f"bench.{mode}", n)
    wait_for(
        lambda: client.counter.counts()[mode] >= before + count,
        timeout=120,
        message=f"{count} {mode} notifications to be handled",
    )
    return count / (time.perf_counter() - started)


def main() -> None:
    """Measure each mode in interleaved rounds; print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queue-type", default="auto", help="the node's queue_type")
    args = parser.parse_args()
    results: dict[str, list[float]] = {"broadcast": [], "service": []}
    with ExitStack() as stack:
        url = stack.enter_context(broker())
        print(f"==> modes: broker {redact_url(url)}, queue_type {args.queue_type}")
        extra = ["--queue-type", args.queue_type, "--max-queued-notifications", "1000000"]
        stack.enter_context(NodeProcess.serve(url, EXCHANGE, "modes:Counter", extra=extra))
        client = stack.enter_context(Client(url, exchange=EXCHANGE, invoke_timeout=30))
        for round_no in range(1, args.rounds + 1):
            for mode in results:
                rate = one_round(client, mode, args.count)
                results[mode].append(rate)
                print(f"round {round_no}: {mode:9} {rate:8.0f} notifications/s")
        # The service-mode listener's durable queues outlive the node: delete them.
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        names = (EXCHANGE, "counter", "on_service", "bench.service")
        channel.queue_delete(listener_queue_name(*names))
        channel.queue_delete(dead_letter_queue_name(*names))
        connection.close()
    summary = {mode: statistics.median(rates) for mode, rates in results.items()}
    print(
        "==> median notifications/s: "
        + ", ".join(f"{mode} {rate:.0f}" for mode, rate in summary.items())
        + f" ({args.count} per round, {args.rounds} rounds, queue_type {args.queue_type})"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "modes.json").write_text(
        json.dumps({"median": summary, "rounds": results, "count": args.count}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
