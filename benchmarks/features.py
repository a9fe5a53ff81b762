"""What isc's message features cost on the broker: raw pika with and without them, and isc.

    python benchmarks/features.py [--rounds 6] [--seconds 3]

Sequential calls/s and the broker's CPU per call (from /proc) for, interleaved round by round:

- ``minimal``: the raw baseline's messages (default exchange, direct reply-to, three
  properties);
- ``+isc features``: what isc's messages carry, sent by raw pika at both ends: requests and
  replies through a named direct exchange, replies to an exclusive queue bound to it under
  its own name (the only reply queue isclib 1.x nodes can reach), an expiration, headers
  tables, content encodings and the mandatory flag;
- ``isc``: an isc client calling an isc node (JSON codec).

Every figure is printed as a ratio to ``minimal`` in the same round (median and range), on a
throwaway RabbitMQ node whose CPU time is read from /proc (Linux only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any, Callable

import pika

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration-tests"))
sys.path.insert(0, str(HERE))

from raw_client import RawClient  # noqa: E402

from isc.client import Client  # noqa: E402
from isc.codecs import get_codec  # noqa: E402
from isc_testing.broker import RabbitMQNode  # noqa: E402
from isc_testing.nodes import NodeProcess  # noqa: E402

EXCHANGE = "features"
QUEUE = "features-rpc"
FEATURES_QUEUE = "features-rpc-isc-like"


class IscLikeClient(RawClient):
    """``RawClient`` sending what isc sends: through the named exchange, replies to an
    exclusive queue bound to it, an expiration, a headers table, mandatory."""

    def __init__(self, url: str) -> None:
        super().__init__(url, FEATURES_QUEUE, reply="exclusive")
        self.channel.queue_bind(self.reply_to, EXCHANGE, routing_key=self.reply_to)

    def send(self, a: Any, b: Any) -> str:
        """Publish one request the way isc does; return its correlation id."""
        self._next_id += 1
        cid = str(self._next_id)
        self.channel.basic_publish(
            EXCHANGE,
            self.queue,
            json.dumps({"a": a, "b": b}).encode(),
            pika.BasicProperties(
                reply_to=self.reply_to,
                correlation_id=cid,
                content_type="application/json",
                content_encoding="utf-8",
                expiration="60000",
                headers={"x-isc-version": 2, "x-isc-deadline": int(time.time() * 1000)},
            ),
            mandatory=True,
        )
        return cid


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every process in group ``pgid`` (Linux ``/proc``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def measure(call: Callable[[int], Any], seconds: float, broker_pgid: int) -> tuple[float, float]:
    """(calls/s, broker CPU us per call) of ``call`` back to back for ``seconds``."""
    for i in range(100):
        call(i)
    cpu0 = group_cpu_seconds(broker_pgid)
    started = time.perf_counter()
    calls = 0
    while time.perf_counter() - started < seconds:
        call(calls)
        calls += 1
    elapsed = time.perf_counter() - started
    return calls / elapsed, (group_cpu_seconds(broker_pgid) - cpu0) / calls * 1e6


def main() -> None:
    """Start the broker, the raw server and an isc node; print the ratio table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with ExitStack() as stack:
        node = RabbitMQNode.launch()
        stack.callback(node.close)
        url, broker_pgid = node.amqp_url, node.pid
        assert broker_pgid is not None
        setup = stack.enter_context(pika.BlockingConnection(pika.URLParameters(url)))
        channel = setup.channel()
        channel.exchange_declare(EXCHANGE, exchange_type="direct")
        channel.queue_declare(FEATURES_QUEUE)
        channel.queue_bind(FEATURES_QUEUE, EXCHANGE, routing_key=FEATURES_QUEUE)
        for queue, exchange in ((QUEUE, ""), (FEATURES_QUEUE, EXCHANGE)):
            stack.enter_context(
                NodeProcess(
                    [sys.executable, str(HERE / "raw_server.py"), url, queue, exchange],
                    ready_line="raw-server-ready",
                )
            )
        stack.enter_context(NodeProcess.serve(url, "features-isc", "calc:Calc"))
        client = stack.enter_context(Client(url, exchange="features-isc", invoke_timeout=60))
        client.set_codec(get_codec("json"))
        minimal = stack.enter_context(closing(RawClient(url, QUEUE)))
        full = stack.enter_context(closing(IscLikeClient(url)))
        kinds: dict[str, Callable[[int], Any]] = {
            "minimal": lambda i: minimal.call(i, 1),
            "+isc features": lambda i: full.call(i, 1),
            "isc": lambda i: client.calc.add(i, 1),
        }
        rows: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
        for r in range(args.rounds):
            order = list(kinds) if r % 2 == 0 else list(reversed(kinds))
            for kind in order:
                rows[kind].append(measure(kinds[kind], args.seconds, broker_pgid))
            print(f"==> round {r + 1}/{args.rounds}", flush=True)
    print("\n| messages | calls/s / minimal | broker CPU per call / minimal |")
    print("| --- | ---: | ---: |")
    for kind in kinds:
        cells = []
        for column in (0, 1):
            ratios = [a[column] / m[column] for a, m in zip(rows[kind], rows["minimal"])]
            cells.append(f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
        print(f"| {kind} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
