"""Failover times on a real 3-member RabbitMQ cluster (the figures of docs/cluster.md).

    python benchmarks/cluster_failover.py [--stops 5]

Boots ``isc.testing.RabbitMQCluster`` (three throwaway members on this machine), runs a node
(quorum service queue) and a client given every member's URL, then ``--stops`` times each:
stops the member the client is connected to, and the member leading the service queue, and
measures how long until a call succeeds again (the member is started again in between).
Prints the cluster's boot time and memory, and the median and range of each failover.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration-tests"))

from isc.client import Client, IscError  # noqa: E402
from isc.core import service_queue_name  # noqa: E402
from isc.testing import RabbitMQCluster, RabbitMQNode  # noqa: E402
from isc_testing.nodes import NodeProcess  # noqa: E402


def _answers(client: Client) -> bool:
    try:
        return bool(client.calc.add.with_timeout(1)(1, 1) == 2)
    except IscError:
        return False


def _failover(client: Client, member: RabbitMQNode) -> float:
    started = time.monotonic()
    member.stop()
    while not _answers(client):
        if time.monotonic() - started > 30:
            raise SystemExit("calls did not succeed again within 30 s")
    return time.monotonic() - started


def _client_member(cluster: RabbitMQCluster, client: Client) -> RabbitMQNode:
    while not client.is_connected:
        time.sleep(0.05)
    url = getattr(client._worker, "url", None)
    return next(m for m in cluster.members if m.amqp_url == url)


def _leader(cluster: RabbitMQCluster, queue: str) -> RabbitMQNode:
    running = next(m for m in cluster.members if m.running)
    listing = cluster.ctl(running, "list_queues", "-q", "name", "leader")
    fields = [line.split() for line in listing.splitlines()]
    leaders = {f[0]: f[1] for f in fields if len(f) == 2}
    return cluster.member_named(leaders[queue])


def main() -> None:
    """Boot the cluster, measure, print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--stops", type=int, default=5)
    args = parser.parse_args()
    started = time.monotonic()
    with RabbitMQCluster.launch() as cluster:
        booted = time.monotonic() - started
        memory = cluster.rss_bytes() >> 20
        print(f"cluster: 3 members joined {booted:.1f}s after spawn, {memory} MB RSS")
        exchange = "isc_bench_cluster"
        urls = ",".join(cluster.amqp_urls)
        extra = ["--queue-type", "quorum"]
        with (
            NodeProcess.serve(urls, exchange, "calc:Calc", extra=extra),
            Client(cluster.amqp_urls, exchange=exchange, invoke_timeout=5) as client,
        ):
            assert client.calc.add(1, 2) == 3
            results: dict[str, list[float]] = {"client's member": [], "quorum leader": []}
            for _ in range(args.stops):
                for kind in results:
                    if kind == "client's member":
                        member = _client_member(cluster, client)
                    else:
                        member = _leader(cluster, service_queue_name(exchange, "calc"))
                    took = _failover(client, member)
                    results[kind].append(took)
                    print(f"{kind} stopped: calls succeed again after {took:.2f}s", flush=True)
                    member.start()
            for kind, times in results.items():
                print(
                    f"{kind}: median {statistics.median(times):.2f}s over {len(times)} stops "
                    f"(range {min(times):.2f}-{max(times):.2f}s)"
                )


if __name__ == "__main__":
    main()
