"""A/B of two isc source trees on one broker: sequential and pipelined calls, CPU per call.

    python benchmarks/ab.py A_TREE B_TREE [--rounds 4] [--seconds 4]

Each tree (a checkout or worktree of this repository) gets its own node (``Calc``, pool
100, own exchange) and its own client process, both importing that tree's packages (its
``packages/*/src`` come first on ``PYTHONPATH``). Rounds alternate which tree goes first;
every figure of B is divided by A's of the same round, and the medians of those ratios are
printed (calls/s above 1 and CPU per call below 1 mean B is better). On a shared machine
only these ratios mean something, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration-tests"))
sys.path.insert(0, str(HERE))

MODES = ("sequential", "pipelined")
METRICS = ("calls_per_s", "client_cpu_us_per_call", "server_cpu_us_per_call")


def tree_path(tree: Path) -> str:
    """The PYTHONPATH that makes a process import ``tree``'s isc packages."""
    srcs = sorted(str(p) for p in (tree / "packages").glob("*/src"))
    if not srcs:
        raise SystemExit(f"{tree} has no packages/*/src: pass a checkout of this repository")
    return os.pathsep.join(srcs)


def measure(url: str, exchange: str, mode: str, seconds: float, node_pid: int) -> None:
    """Run in the child: measure ``mode`` against the node and print one JSON line."""
    from run import isc_pipelined, isc_sequential, with_cpu

    from isc.client import Client
    from isc.codecs import get_codec

    with Client(url, exchange=exchange, invoke_timeout=60) as client:
        client.set_codec(get_codec("typedjson"))
        for i in range(200):  # warm up: connection, reply queue, first calls
            client.calc.add(i, 1)
        if mode == "sequential":
            row = with_cpu(lambda: isc_sequential(client, seconds), node_pid)()
        else:
            row = with_cpu(lambda: isc_pipelined(client, seconds), node_pid)()
    print(json.dumps(row), flush=True)


def child(tree: Path, *argv: str) -> dict[str, Any]:
    """Run ``measure`` in a process importing ``tree``'s packages; its JSON row."""
    env = dict(os.environ, PYTHONPATH=tree_path(tree))
    out = subprocess.run(
        [sys.executable, __file__, "--measure", *argv],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main() -> None:
    """Parse the arguments; orchestrate the rounds, or measure once (``--measure``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--measure", nargs=5, metavar=("URL", "EXCHANGE", "MODE", "S", "PID"))
    args = parser.parse_args()
    if args.measure:
        url, exchange, mode, seconds, pid = args.measure
        measure(url, exchange, mode, float(seconds), int(pid))
        return
    if len(args.trees) != 2:
        parser.error("give two trees: A (the reference) and B")

    from run import broker

    from isc_testing.nodes import NodeProcess

    trees = {"A": args.trees[0].resolve(), "B": args.trees[1].resolve()}
    rounds: list[dict[str, dict[str, dict[str, Any]]]] = []
    with ExitStack() as stack:
        url = stack.enter_context(broker())
        pids = {}
        saved = os.environ.get("PYTHONPATH")
        for name, tree in trees.items():
            os.environ["PYTHONPATH"] = tree_path(tree)
            node = stack.enter_context(
                NodeProcess.serve(url, f"ab-{name}", "calc:Calc", extra=["--pool", "100"])
            )
            pids[name] = node.pid
            print(f"node {name}: pid {node.pid}", flush=True)
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved
        for r in range(args.rounds):
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            result: dict[str, dict[str, dict[str, Any]]] = {}
            for mode in args.modes:
                result[mode] = {}
                for name in order:
                    result[mode][name] = child(
                        trees[name], url, f"ab-{name}", mode, str(args.seconds), str(pids[name])
                    )
            rounds.append(result)
            print(f"round {r + 1}: " + json.dumps(result), flush=True)
    print(f"\nB/A, median of {len(rounds)} rounds (range): A={trees['A']} B={trees['B']}")
    for mode in args.modes:
        for metric in METRICS:
            ratios = [rd[mode]["B"][metric] / rd[mode]["A"][metric] for rd in rounds]
            a_med = statistics.median(rd[mode]["A"][metric] for rd in rounds)
            print(
                f"  {mode:10} {metric:24} {statistics.median(ratios):5.2f} "
                f"({min(ratios):.2f}-{max(ratios):.2f})  A median {a_med:.1f}"
            )


if __name__ == "__main__":
    main()
