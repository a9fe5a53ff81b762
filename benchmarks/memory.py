"""Client memory over many sequential calls: ``make bench-memory`` (``CALLS=...`` to change N).

    python benchmarks/memory.py [--calls N] [--samples K]

Starts a throwaway RabbitMQ (or uses ``ISC_URL`` if set) and one isc node hosting
``integration-tests/services/calc.py``'s ``Calc``, makes ``N`` sequential
``client.calc.add(i, 1)`` calls (default 1,000,000) from one client and samples the client's
resident set size (RSS) ``K`` times on the way. The baseline is taken after a warm-up of
2,000 calls, so imports, the connection and the first allocations are not counted as growth.
Writes ``benchmarks/results/memory.json`` and prints the samples and the growth; exits with
status 1 when the growth reaches ``--limit-mb`` (default 5, the issue's target).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "integration-tests"))
sys.path.insert(0, str(HERE))

from run import RESULTS, broker  # noqa: E402

from isc.client import Client  # noqa: E402
from isc.core import redact_url  # noqa: E402
from isc_testing.nodes import NodeProcess  # noqa: E402

EXCHANGE = "bench-memory"
WARM_UP = 2000


def rss_mb() -> float:
    """The current resident set size of this process in MB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):  # not Linux: the peak is the best the stdlib offers
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main() -> None:
    """Run the calls, sample RSS, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--limit-mb", type=float, default=5.0)
    args = parser.parse_args()
    if args.calls < args.samples or args.samples < 1:
        parser.error("--calls must be at least --samples, and --samples at least 1")
    RESULTS.mkdir(exist_ok=True)
    samples: list[dict[str, float]] = []
    with ExitStack() as stack:
        url = stack.enter_context(broker())
        print(f"==> broker {redact_url(url)}; starting an isc node")
        stack.enter_context(NodeProcess.serve(url, EXCHANGE, "calc:Calc", extra=["--pool", "8"]))
        client = stack.enter_context(Client(url, exchange=EXCHANGE, invoke_timeout=60))
        add = client.calc.add
        for i in range(WARM_UP):
            add(i, 1)
        gc.collect()
        baseline = rss_mb()
        print(
            f"==> {args.calls:,} sequential calls; RSS after {WARM_UP:,} warm-up calls: "
            f"{baseline:.1f} MB"
        )
        step = args.calls // args.samples
        started = time.perf_counter()
        done = 0
        while done < args.calls:
            for i in range(done, min(done + step, args.calls)):
                if add(i, 1) != i + 1:
                    raise SystemExit(f"wrong result for call {i}")
            done = min(done + step, args.calls)
            gc.collect()
            sample = {
                "calls": done,
                "seconds": time.perf_counter() - started,
                "rss_mb": rss_mb(),
                "pending_calls": client.pending_calls,
            }
            samples.append(sample)
            print(
                f"  {done:>9,} calls  {sample['seconds']:7.0f} s  RSS {sample['rss_mb']:7.1f} MB "
                f"({sample['rss_mb'] - baseline:+.2f})"
            )
    elapsed = samples[-1]["seconds"]
    growth = samples[-1]["rss_mb"] - baseline
    peak_growth = max(s["rss_mb"] for s in samples) - baseline
    # The second half of the run shows whether memory keeps growing with the call count.
    half = samples[len(samples) // 2]
    late_growth = samples[-1]["rss_mb"] - half["rss_mb"]
    late_calls = samples[-1]["calls"] - half["calls"]
    per_million = late_growth / late_calls * 1_000_000 if late_calls else 0.0
    result = {
        "meta": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "calls": args.calls,
            "warm_up_calls": WARM_UP,
            "seconds": elapsed,
        },
        "baseline_rss_mb": baseline,
        "growth_mb": growth,
        "peak_growth_mb": peak_growth,
        "second_half_growth_mb_per_million_calls": per_million,
        "samples": samples,
    }
    (RESULTS / "memory.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n{args.calls:,} calls in {elapsed:.0f} s ({args.calls / elapsed:,.0f} calls/s): RSS "
        f"grew {growth:+.2f} MB (peak {peak_growth:+.2f} MB; second half: "
        f"{per_million:+.2f} MB per million calls); wrote {RESULTS / 'memory.json'}"
    )
    if growth >= args.limit_mb:
        raise SystemExit(f"RSS grew {growth:.2f} MB, not less than {args.limit_mb} MB")


if __name__ == "__main__":
    main()
