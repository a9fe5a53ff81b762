"""Soak: many calls and notifications through one client and one node, sampling both RSS.

    python benchmarks/soak.py [--calls 200000] [--samples 10]

Starts a throwaway RabbitMQ (or uses ``ISC_URL``), a node subprocess hosting ``Calc`` from
``integration-tests/services/calc.py``, and one client in this process. Makes
``--calls`` calls, 100 in flight at a time, plus one notification per 100 calls. Prints the
resident memory of the client and of the node after a warm-up and at each sample, then the
growth. It reports and does not judge: the closing notes of the reliability and performance
issues quote it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration-tests"))

from isc.client import Client  # noqa: E402
from isc_testing.broker import RabbitMQNode  # noqa: E402
from isc_testing.nodes import NodeProcess  # noqa: E402

EXCHANGE = "soak"
IN_FLIGHT = 100


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_calls(client: Client, count: int) -> None:
    """``count`` calls, ``IN_FLIGHT`` at a time, each result checked; one notify per window."""
    done = 0
    while done < count:
        window = min(IN_FLIGHT, count - done)
        futures = [client.calc.add.call_async(done + i, 1) for i in range(window)]
        for i, future in enumerate(futures):
            if future.result(30) != done + i + 1:
                raise AssertionError(f"call {done + i} returned {future.result()!r}")
        client.notify("soak", done)  # decoded by the node, which has no listener for it
        done += window


def main() -> None:
    """Parse the arguments, run the soak, print the memory table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20_000)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = os.environ.get("ISC_URL") or stack.enter_context(RabbitMQNode.launch()).amqp_url
        node = stack.enter_context(
            NodeProcess.serve(url, EXCHANGE, "calc:Calc", extra=["--pool", "100"])
        )
        client = Client(url, exchange=EXCHANGE, invoke_timeout=30)
        stack.callback(client.stop)
        run_calls(client, args.warmup)
        assert client.flush(30)
        base = (rss_mb(os.getpid()), rss_mb(node.pid))
        print(f"{'calls':>10} {'client MiB':>11} {'node MiB':>9} {'calls/s':>8}")
        print(f"{0:>10} {base[0]:>11.1f} {base[1]:>9.1f} {'':>8}")
        step = args.calls // args.samples
        started = time.monotonic()
        for n in range(1, args.samples + 1):
            run_calls(client, step)
            rate = n * step / (time.monotonic() - started)
            client_mb, node_mb = rss_mb(os.getpid()), rss_mb(node.pid)
            print(f"{n * step:>10} {client_mb:>11.1f} {node_mb:>9.1f} {rate:>8.0f}", flush=True)
        assert client.flush(30)
        assert client.pending_calls == 0
        end = (rss_mb(os.getpid()), rss_mb(node.pid))
        print(
            f"growth after warm-up: client {end[0] - base[0]:+.1f} MiB, "
            f"node {end[1] - base[1]:+.1f} MiB over {args.samples * step} calls "
            f"and {args.samples * step // IN_FLIGHT} notifications"
        )


if __name__ == "__main__":
    main()
