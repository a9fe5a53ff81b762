"""asyncio RPC on one broker, in one run: isc's AsyncClient, aio-pika's RPC pattern, FastStream.

    python benchmarks/aio.py [--rounds N] [--quick]

``make bench`` runs it after ``run.py``. Starts a throwaway RabbitMQ (or uses ``ISC_URL``), an
isc node hosting ``Calc`` (``--pool 100``), the raw-pika server of ``raw_server.py`` and the
two peers' own servers (``aio_peers.py``), then runs each client in interleaved rounds (the
order rotates every round): ``add(i, 1)`` sequentially, then with 100 calls in flight (100
tasks calling back to back; raw pika: 100 requests outstanding). Every figure is divided by
raw pika's in the same round; the table shows medians over the rounds, plus the client's and
the server's CPU per call. Writes ``benchmarks/results/aio.json`` and ``aio_table.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import time
from collections.abc import Awaitable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration-tests"))
sys.path.insert(0, str(HERE))

from aio_peers import AIO_PIKA_METHOD, FASTSTREAM_QUEUE, READY_LINE  # noqa: E402
from raw_client import RawClient  # noqa: E402
from run import RESULTS, broker, process_cpu_seconds  # noqa: E402

from isc.client.aio import AsyncClient  # noqa: E402
from isc_testing.nodes import NodeProcess  # noqa: E402

EXCHANGE = "bench-aio"
RAW_QUEUE = "raw-aio-bench-rpc"
IN_FLIGHT = 100
NODE_POOL = 100
CLIENTS = ("isc", "aio-pika", "faststream")
LABELS = {
    "isc": "isc AsyncClient",
    "aio-pika": "aio-pika RPC pattern",
    "faststream": "FastStream request()",
    "raw": "raw pika (blocking)",
}

Row = dict[str, Any]
Call = Callable[[int], Awaitable[Any]]


async def sequential(call: Call, duration: float) -> Row:
    """``call(i)`` back to back for ``duration`` seconds."""
    started = time.perf_counter()
    stop_at = started + duration
    i = 0
    while True:
        assert await call(i) == i + 1
        i += 1
        if time.perf_counter() >= stop_at:
            break
    elapsed = time.perf_counter() - started
    return {"calls": i, "seconds": elapsed, "calls_per_s": i / elapsed}


async def in_flight(call: Call, duration: float) -> Row:
    """``IN_FLIGHT`` tasks each calling back to back for ``duration`` seconds."""
    started = time.perf_counter()
    stop_at = started + duration

    async def worker(offset: int) -> int:
        done = 0
        i = offset
        while time.perf_counter() < stop_at:
            assert await call(i) == i + 1
            done += 1
            i += IN_FLIGHT
        return done

    counts = await asyncio.gather(*(worker(n) for n in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    return {"calls": sum(counts), "seconds": elapsed, "calls_per_s": sum(counts) / elapsed}


async def with_cpu(measure: Callable[[], Awaitable[Row]], server_pid: int) -> Row:
    """``measure()`` plus this process's and the server's CPU per call, in microseconds."""
    server0 = process_cpu_seconds(server_pid)
    client0 = process_cpu_seconds()
    row = await measure()
    row["client_cpu_us_per_call"] = (process_cpu_seconds() - client0) / row["calls"] * 1e6
    row["server_cpu_us_per_call"] = (process_cpu_seconds(server_pid) - server0) / row["calls"] * 1e6
    return row


async def connect_peers(url: str) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    """The asyncio clients' ``add(i, 1)`` and a function that closes them all."""
    import aio_pika
    from aio_pika.patterns import RPC
    from faststream.rabbit import RabbitBroker

    isc = await AsyncClient(url, exchange=EXCHANGE, invoke_timeout=30).start()
    assert await isc.wait_connected(10)
    add = isc.calc.add

    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel()
    rpc = await RPC.create(channel)

    stream = RabbitBroker(url, log_level=30)
    await stream.connect()

    async def isc_add(i: int) -> Any:
        return await add(i, 1)

    async def aio_pika_add(i: int) -> Any:
        return await rpc.call(AIO_PIKA_METHOD, kwargs={"a": i, "b": 1})

    async def faststream_add(i: int) -> Any:
        message = await stream.request({"a": i, "b": 1}, FASTSTREAM_QUEUE, timeout=30)
        return await message.decode()

    async def close() -> None:
        await isc.stop()
        await rpc.close()
        await connection.close()
        await stream.stop()

    calls: dict[str, Call] = {
        "isc": isc_add,
        "aio-pika": aio_pika_add,
        "faststream": faststream_add,
    }
    return calls, close


async def run_round(
    round_no: int,
    duration: float,
    calls: dict[str, Call],
    raw: RawClient,
    pids: dict[str, int],
) -> dict[str, Any]:
    """One round: every client sequentially, then with ``IN_FLIGHT`` calls in flight."""
    sides = [*CLIENTS, "raw"]
    shift = round_no % len(sides)
    order = sides[shift:] + sides[:shift]
    out: dict[str, Any] = {"sequential": {}, "in_flight": {}}

    async def raw_sequential() -> Row:
        started = time.perf_counter()
        stop_at = started + duration
        i = 0
        while True:
            assert raw.call(i, 1) == i + 1
            i += 1
            if time.perf_counter() >= stop_at:
                break
        elapsed = time.perf_counter() - started
        return {"calls": i, "seconds": elapsed, "calls_per_s": i / elapsed}

    async def raw_in_flight() -> Row:
        done, elapsed = raw.pipelined(IN_FLIGHT, duration)
        return {"calls": done, "seconds": elapsed, "calls_per_s": done / elapsed}

    for side in order:
        if side == "raw":
            out["sequential"]["raw"] = await with_cpu(raw_sequential, pids["raw"])
            out["in_flight"]["raw"] = await with_cpu(raw_in_flight, pids["raw"])
            continue
        call = calls[side]
        out["sequential"][side] = await with_cpu(
            functools.partial(sequential, call, duration), pids[side]
        )
        out["in_flight"][side] = await with_cpu(
            functools.partial(in_flight, call, duration), pids[side]
        )
    return out


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds: calls/s, ratio to raw pika, CPU per call, isc vs each peer."""
    summary: dict[str, Any] = {}
    for scenario in ("sequential", "in_flight"):
        rows: dict[str, Any] = {}
        for side in [*CLIENTS, "raw"]:
            figures = [r[scenario][side] for r in rounds]
            rows[side] = {
                "calls_per_s": statistics.median(f["calls_per_s"] for f in figures),
                "vs_raw": statistics.median(
                    r[scenario][side]["calls_per_s"] / r[scenario]["raw"]["calls_per_s"]
                    for r in rounds
                ),
                "client_cpu_us_per_call": statistics.median(
                    f["client_cpu_us_per_call"] for f in figures
                ),
                "server_cpu_us_per_call": statistics.median(
                    f["server_cpu_us_per_call"] for f in figures
                ),
            }
        for peer in ("aio-pika", "faststream"):
            rows[f"isc_vs_{peer}"] = statistics.median(
                r[scenario]["isc"]["calls_per_s"] / r[scenario][peer]["calls_per_s"] for r in rounds
            )
        summary[scenario] = rows
    return summary


def table(summary: dict[str, Any], rounds: int) -> str:
    """The markdown table of :func:`summarize`'s figures."""
    lines = [
        f"asyncio RPC, `add(i, 1)`, medians of {rounds} interleaved rounds "
        "(ratios: per round, then the median)",
        "",
        "| client | scenario | calls/s | x raw pika | client CPU µs/call | server CPU µs/call |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    names = {"sequential": "sequential", "in_flight": f"{IN_FLIGHT} in flight"}
    for scenario, name in names.items():
        for side in [*CLIENTS, "raw"]:
            row = summary[scenario][side]
            lines.append(
                f"| {LABELS[side]} | {name} | {row['calls_per_s']:,.0f} | {row['vs_raw']:.2f} | "
                f"{row['client_cpu_us_per_call']:,.0f} | {row['server_cpu_us_per_call']:,.0f} |"
            )
    lines += ["", "| isc AsyncClient vs | sequential | 100 in flight |", "| --- | ---: | ---: |"]
    for peer in ("faststream", "aio-pika"):
        seq = summary["sequential"][f"isc_vs_{peer}"]
        par = summary["in_flight"][f"isc_vs_{peer}"]
        lines.append(f"| {LABELS[peer]} | {seq:.2f}x | {par:.2f}x |")
    return "\n".join(lines) + "\n"


async def measure(url: str, rounds: int, duration: float, pids: dict[str, int]) -> list[Any]:
    """Connect every client, then run the rounds."""
    calls, close = await connect_peers(url)
    raw = RawClient(url, RAW_QUEUE)
    try:
        for call in calls.values():  # warm up: connections, queues, first-call costs
            for i in range(20):
                assert await call(i) == i + 1
        results = []
        for round_no in range(rounds):
            results.append(await run_round(round_no, duration, calls, raw, pids))
            print(f"round {round_no + 1}/{rounds} done", flush=True)
        return results
    finally:
        raw.close()
        await close()


def main() -> None:
    """Start the servers, measure, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="0.8 s measurements")
    options = parser.parse_args()
    duration = 0.8 if options.quick else 2.0
    with ExitStack() as stack:
        url = stack.enter_context(broker())
        node = stack.enter_context(
            NodeProcess.serve(url, EXCHANGE, "calc:Calc", extra=["--pool", str(NODE_POOL)])
        )
        raw_server = stack.enter_context(
            NodeProcess(
                [sys.executable, str(HERE / "raw_server.py"), url, RAW_QUEUE],
                ready_line="raw-server-ready",
            )
        )
        peers = {
            name: stack.enter_context(
                NodeProcess(
                    [sys.executable, str(HERE / "aio_peers.py"), name, url],
                    ready_line=READY_LINE,
                )
            )
            for name in ("aio-pika", "faststream")
        }
        pids = {"isc": node.pid, "raw": raw_server.pid}
        pids.update({name: proc.pid for name, proc in peers.items()})
        results = asyncio.run(measure(url, options.rounds, duration, pids))
    summary = summarize(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "aio.json").write_text(
        json.dumps({"rounds": results, "summary": summary}, indent=2) + "\n"
    )
    text = table(summary, options.rounds)
    (RESULTS / "aio_table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
