"""isc against a raw-pika RPC baseline on the same broker, in the same run: ``make bench``.

    python benchmarks/run.py [--rounds N] [--quick] [--fastpath on|off]

Starts a throwaway RabbitMQ (or uses ``ISC_URL`` if set), an isc node hosting
``integration-tests/services/calc.py``'s ``Calc`` and the raw-pika server of ``raw_server.py``,
then runs every scenario in interleaved rounds (isc and raw alternate which goes first). Each
isc figure is divided by the raw figure of the same round; the table shows medians over the
rounds. The mixed-latency scenario has no raw side: it compares one isc client's fast calls
while other threads wait on slow calls with the same fast calls alone, in the same round.
Writes ``benchmarks/results/results.json``, ``results.png`` and ``table.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable

import pika

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "integration-tests"))
sys.path.insert(0, str(HERE))

from raw_client import RawClient  # noqa: E402

from isc.client import Client, TimeoutException  # noqa: E402
from isc.codecs import get_codec  # noqa: E402
from isc.core import fanout_exchange_name, redact_url  # noqa: E402
from isc_testing.broker import RabbitMQNode  # noqa: E402
from isc_testing.nodes import NodeProcess  # noqa: E402

RESULTS = HERE / "results"
EXCHANGE = "bench"
SLOW_EXCHANGE = "bench-slow"
RAW_QUEUE = "raw-bench-rpc"
RAW_FANOUT = "raw-bench-fanout"
CODECS = ("json", "typedjson", "msgpack", "pickle")
SIZES = {"100 B": 100, "10 KB": 10_000, "1 MB": 1_000_000}
IN_FLIGHT = 100
SLOW_CALLS = 1000
#: The main node's pool (and prefetch): enough that neither the pipelined scenario nor the
#: mixed-latency one ever queues a call on the node.
NODE_POOL = 100
#: Mixed latency: threads making slow calls, threads making fast ones (one shared client).
MIXED_SLOW_THREADS = 2
MIXED_FAST_THREADS = 2
MIXED_SLOW_WAIT = 0.5  # seconds the node sleeps (cooperatively) in each slow call
#: Every call of the mixed scenario gives up after this long: a client that holds a fast call
#: behind a slow one shows up as latency, one that loses a reply as a timeout, never a hang.
MIXED_CALL_TIMEOUT = 10.0
#: The environment variable that will switch the client and node to stock pika ("0").
FASTPATH_ENV = "ISC_PIKA_FASTPATH"

if MIXED_SLOW_THREADS + MIXED_FAST_THREADS > NODE_POOL:
    raise SystemExit("the mixed-latency scenario needs a node pool of at least its threads")

Row = dict[str, Any]


class Settings:
    """How long each measurement runs."""

    def __init__(self, quick: bool) -> None:
        scale = 0.4 if quick else 1.0
        self.sequential = 2.0 * scale
        self.pipelined = 2.0 * scale
        self.notify_count = int(5000 * scale)
        self.payload = 0.8 * scale
        self.payload_min_calls = 3
        self.mixed = 2.0 * scale


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed_loop(call: Callable[[int], object], duration: float, min_calls: int = 1) -> Row:
    """Call ``call(i)`` back to back for ``duration`` s; calls/s and p50/p99 latency in ms."""
    latencies: list[float] = []
    started = time.perf_counter()
    stop_at = started + duration
    i = 0
    while True:
        t0 = time.perf_counter()
        call(i)
        t1 = time.perf_counter()
        latencies.append(t1 - t0)
        i += 1
        if t1 >= stop_at and i >= min_calls:
            break
    elapsed = time.perf_counter() - started
    return {
        "calls": i,
        "seconds": elapsed,
        "calls_per_s": i / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def process_cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux) or by this one."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_cpu(measure: Callable[[], Row], server_pid: int) -> Callable[[], Row]:
    """``measure`` plus the CPU time per call of this process (the client) and of the server.

    On a shared machine CPU per call is steadier than calls/s: waiting for a core does not
    count. Without /proc (not Linux) the figures are left out.
    """

    def run() -> Row:
        try:
            server0 = process_cpu_seconds(server_pid)
        except OSError:
            return measure()
        client0 = process_cpu_seconds()
        row = measure()
        client_s = process_cpu_seconds() - client0
        server_s = process_cpu_seconds(server_pid) - server0
        row["client_cpu_us_per_call"] = client_s / row["calls"] * 1e6
        row["server_cpu_us_per_call"] = server_s / row["calls"] * 1e6
        return row

    return run


# -- the isc side ------------------------------------------------------------------------------


def isc_sequential(client: Client, duration: float) -> Row:
    """``client.calc.add(i, 1)`` back to back."""

    def call(i: int) -> None:
        assert client.calc.add(i, 1) == i + 1

    return timed_loop(call, duration)


def isc_pipelined(client: Client, duration: float) -> Row:
    """``call_async`` with ``IN_FLIGHT`` calls outstanding (oldest awaited first)."""
    add = client.calc.add
    outstanding = deque(add.call_async(i, 1) for i in range(IN_FLIGHT))
    done = 0
    started = time.perf_counter()
    stop_at = started + duration
    while outstanding:
        outstanding.popleft().result(30)
        done += 1
        if time.perf_counter() < stop_at:
            outstanding.append(add.call_async(done, 1))
    elapsed = time.perf_counter() - started
    return {"calls": done, "seconds": elapsed, "calls_per_s": done / elapsed}


class FanoutCounter:
    """A queue bound to a fanout exchange; notifications count once the broker has them."""

    def __init__(self, url: str, exchange: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(exchange, exchange_type="fanout", auto_delete=False)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, exchange)

    def count(self) -> int:
        """Messages waiting in the queue now."""
        return int(self.channel.queue_declare(self.queue, passive=True).method.message_count)

    def wait_for(self, expected: int, timeout: float = 60.0) -> None:
        """Poll until ``expected`` messages are in the queue."""
        deadline = time.monotonic() + timeout
        while self.count() < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.count()} of {expected} notifications arrived")
            time.sleep(0.005)

    def purge(self) -> None:
        """Empty the queue."""
        self.channel.queue_purge(self.queue)

    def close(self) -> None:
        """Close the connection (the exclusive queue goes with it)."""
        self.connection.close()


def measure_notify(
    publish: Callable[[int], object],
    count: int,
    counter: FanoutCounter,
    confirmed: Callable[[], object] | None = None,
) -> Row:
    """Publish ``count`` notifications; time until the broker has confirmed (when
    ``confirmed`` is given: it waits for that) and queued every one."""
    counter.purge()
    started = time.perf_counter()
    for i in range(count):
        publish(i)
    published = time.perf_counter() - started
    if confirmed is not None and not confirmed():
        raise RuntimeError("the broker did not confirm every notification in time")
    counter.wait_for(count)
    elapsed = time.perf_counter() - started
    counter.purge()
    return {
        "messages": count,
        "seconds": elapsed,
        "msgs_per_s": count / elapsed,
        "publish_loop_s": published,
    }


def isc_confirms(client: Client) -> Callable[[], object] | None:
    """``client.flush`` (wait for the broker's confirms) if this isc has publisher confirms."""
    flush = getattr(client, "flush", None)
    return (lambda: flush(60)) if callable(flush) else None


def isc_slow(client: Client) -> Row:
    """``SLOW_CALLS`` concurrent ``calc.add(i, 1, wait=1)`` on one node (pool 1000)."""
    started = time.perf_counter()
    futures = [client.calc.add.call_async(i, 1, wait=1) for i in range(SLOW_CALLS)]
    results = [f.result(120) for f in futures]
    elapsed = time.perf_counter() - started
    assert results == [i + 1 for i in range(SLOW_CALLS)]
    return {"calls": SLOW_CALLS, "seconds": elapsed, "ratio_to_ideal_1s": elapsed / 1.0}


class Threads:
    """Threads that hand their errors to the thread that joins them, and a bounded join."""

    def __init__(self, targets: list[Callable[[], None]]) -> None:
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._guard(t), daemon=True) for t in targets]
        for thread in self.threads:
            thread.start()

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # re-raised by join()
                self.errors.append(exc)

        return run

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for every thread; re-raise the first error one raised. A
        thread still running then is an error too: a stuck client fails the bench, never
        hangs it."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.errors:
            raise self.errors[0]
        if any(thread.is_alive() for thread in self.threads):
            raise RuntimeError(f"a benchmark thread was still running after {timeout:g} s")


def isc_fast_calls(client: Client, duration: float, slow_threads: int) -> Row:
    """``MIXED_FAST_THREADS`` threads calling ``calc.add(i, 1)`` back to back for ``duration``
    s on ``client``, while ``slow_threads`` other threads each wait on one
    ``calc.add(i, 1, wait=MIXED_SLOW_WAIT)`` after another on the same client.

    The fast threads start once every slow thread has sent its first call, and the slow
    threads stop once the fast ones are done. Each fast call's latency is recorded (a
    timed-out one as the time it took to time out); p50 and p99 are over every fast thread's
    calls. Every call has a timeout, so a client that loses replies cannot hang the bench.
    """
    stop_slow = threading.Event()
    slow_sending = threading.Semaphore(0)
    latencies: list[list[float]] = [[] for _ in range(MIXED_FAST_THREADS)]
    fast_timeouts = [0] * MIXED_FAST_THREADS
    slow_done = [0] * slow_threads
    slow_timeouts = [0] * slow_threads

    def slow(n: int) -> None:
        i = 0
        while not stop_slow.is_set():
            if i == 0:
                slow_sending.release()  # the first slow call is in flight from here on
            try:
                result = client.call(
                    "calc", "add", (i, 1), {"wait": MIXED_SLOW_WAIT}, timeout=MIXED_CALL_TIMEOUT
                )
            except TimeoutException:
                slow_timeouts[n] += 1
            else:
                if result != i + 1:
                    raise AssertionError(f"slow call: {result!r} != {i + 1}")
                slow_done[n] += 1
            i += 1

    def fast(n: int, stop_at: float) -> None:
        mine = latencies[n]
        i = 0
        while True:
            t0 = time.perf_counter()
            try:
                result = client.call("calc", "add", (i, 1), timeout=MIXED_CALL_TIMEOUT)
            except TimeoutException:
                fast_timeouts[n] += 1
            else:
                if result != i + 1:
                    raise AssertionError(f"fast call: {result!r} != {i + 1}")
            t1 = time.perf_counter()
            mine.append(t1 - t0)
            i += 1
            if t1 >= stop_at:
                return

    slow_pool = Threads([partial(slow, n) for n in range(slow_threads)])
    try:
        for _ in range(slow_threads):
            if not slow_sending.acquire(timeout=MIXED_CALL_TIMEOUT):
                raise RuntimeError("a slow-call thread did not start calling")
        started = time.perf_counter()
        stop_at = started + duration
        fast_pool = Threads([partial(fast, n, stop_at) for n in range(MIXED_FAST_THREADS)])
        fast_pool.join(duration + MIXED_CALL_TIMEOUT + 5)
        elapsed = time.perf_counter() - started
    finally:
        stop_slow.set()
        slow_pool.join(MIXED_CALL_TIMEOUT + 5)
    every = [latency for mine in latencies for latency in mine]
    return {
        "calls": len(every),
        "seconds": elapsed,
        "calls_per_s": len(every) / elapsed,
        "p50_ms": percentile(every, 0.5) * 1000,
        "p99_ms": percentile(every, 0.99) * 1000,
        "max_ms": max(every) * 1000,
        "timeouts": sum(fast_timeouts),
        "fast_threads": MIXED_FAST_THREADS,
        "slow_threads": slow_threads,
        "slow_calls": sum(slow_done),
        "slow_timeouts": sum(slow_timeouts),
    }


# -- the harness -------------------------------------------------------------------------------


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


def pair(round_no: int, isc: Callable[[], Row], raw: Callable[[], Row]) -> tuple[Row, Row]:
    """Run both sides, isc first in even rounds and raw first in odd ones."""
    if round_no % 2 == 0:
        a = isc()
        b = raw()
    else:
        b = raw()
        a = isc()
    return a, b


def run_round(
    round_no: int,
    s: Settings,
    client: Client,
    slow_client: Client,
    raw: RawClient,
    raw_exclusive: RawClient,
    raw_notify: pika.adapters.blocking_connection.BlockingChannel,
    counters: dict[str, FanoutCounter],
    pids: dict[str, int],
) -> dict[str, Any]:
    """One round of every scenario (``pids``: the isc node's and the raw server's)."""
    out: dict[str, Any] = {}
    client.set_codec(get_codec("typedjson"))

    def raw_call(i: int) -> None:
        assert raw.call(i, 1) == i + 1

    out["sequential"] = dict(
        zip(
            ("isc", "raw"),
            pair(
                round_no,
                with_cpu(lambda: isc_sequential(client, s.sequential), pids["isc"]),
                with_cpu(lambda: timed_loop(raw_call, s.sequential), pids["raw"]),
            ),
        )
    )

    def raw_pipelined() -> Row:
        done, elapsed = raw.pipelined(IN_FLIGHT, s.pipelined)
        return {"calls": done, "seconds": elapsed, "calls_per_s": done / elapsed}

    out["pipelined"] = dict(
        zip(
            ("isc", "raw"),
            pair(
                round_no,
                with_cpu(lambda: isc_pipelined(client, s.pipelined), pids["isc"]),
                with_cpu(raw_pipelined, pids["raw"]),
            ),
        )
    )

    # Mixed latency: the same client's fast calls with other threads waiting on slow calls, and
    # alone (no raw side: the two are compared with each other, in the same round).
    out["mixed"] = dict(
        zip(
            ("mixed", "alone"),
            pair(
                round_no,
                lambda: isc_fast_calls(client, s.mixed, MIXED_SLOW_THREADS),
                lambda: isc_fast_calls(client, s.mixed, 0),
            ),
        )
    )

    # The reply path alone: the same raw client, replies on an exclusive queue vs direct reply-to.
    def exclusive_call(i: int) -> None:
        assert raw_exclusive.call(i, 1) == i + 1

    def pipelined_with(client: RawClient) -> Callable[[], Row]:
        def run() -> Row:
            done, elapsed = client.pipelined(IN_FLIGHT, s.pipelined)
            return {"calls": done, "seconds": elapsed, "calls_per_s": done / elapsed}

        return run

    out["reply_path"] = {
        "sequential": dict(
            zip(
                ("exclusive", "direct"),
                pair(
                    round_no,
                    lambda: timed_loop(exclusive_call, s.sequential),
                    lambda: timed_loop(raw_call, s.sequential),
                ),
            )
        ),
        "pipelined": dict(
            zip(
                ("exclusive", "direct"),
                pair(round_no, pipelined_with(raw_exclusive), pipelined_with(raw)),
            )
        ),
    }

    def raw_publish(i: int) -> None:
        raw_notify.basic_publish(
            RAW_FANOUT,
            "",
            json.dumps({"event": "bench", "args": [i]}).encode(),
            pika.BasicProperties(content_type="application/json"),
        )

    out["notify"] = dict(
        zip(
            ("isc", "raw"),
            pair(
                round_no,
                lambda: measure_notify(
                    lambda i: client.notify("bench", i),
                    s.notify_count,
                    counters["isc"],
                    isc_confirms(client),
                ),
                lambda: measure_notify(raw_publish, s.notify_count, counters["raw"]),
            ),
        )
    )

    payload: dict[str, Any] = {}
    for label, size in SIZES.items():
        text = "x" * size

        def raw_payload(_i: int, text: str = text) -> None:
            assert len(raw.call(text, "")) == len(text)

        def isc_codecs(text: str = text) -> Row:
            rows: Row = {}
            for codec in CODECS:
                client.set_codec(get_codec(codec))

                def call(_i: int) -> None:
                    assert len(client.calc.add(text, "")) == len(text)

                rows[codec] = timed_loop(call, s.payload, s.payload_min_calls)
            return rows

        def raw_sweep(fn: Callable[[int], None] = raw_payload) -> Row:
            return timed_loop(fn, s.payload, s.payload_min_calls)

        isc_rows, raw_row = pair(round_no, isc_codecs, raw_sweep)
        payload[label] = {"isc": isc_rows, "raw": raw_row}
    client.set_codec(get_codec("typedjson"))
    out["payload"] = payload
    out["slow"] = isc_slow(slow_client)
    return out


def ratio_rows(rounds: list[dict[str, Any]], confirms: bool) -> list[Row]:
    """Median isc figure, median raw figure and median of the per-round isc/raw ratios."""
    specs: list[tuple[str, Callable[[dict[str, Any]], tuple[float, float | None]], str]] = [
        (
            "sequential calls/s",
            lambda r: (
                r["sequential"]["isc"]["calls_per_s"],
                r["sequential"]["raw"]["calls_per_s"],
            ),
            "higher",
        ),
        (
            "sequential p50 latency ms",
            lambda r: (r["sequential"]["isc"]["p50_ms"], r["sequential"]["raw"]["p50_ms"]),
            "lower",
        ),
        (
            "sequential p99 latency ms",
            lambda r: (r["sequential"]["isc"]["p99_ms"], r["sequential"]["raw"]["p99_ms"]),
            "lower",
        ),
        (
            f"pipelined calls/s ({IN_FLIGHT} in flight)",
            lambda r: (r["pipelined"]["isc"]["calls_per_s"], r["pipelined"]["raw"]["calls_per_s"]),
            "higher",
        ),
        (
            "notify msgs/s (confirmed)" if confirms else "notify msgs/s (isc unconfirmed)",
            lambda r: (r["notify"]["isc"]["msgs_per_s"], r["notify"]["raw"]["msgs_per_s"]),
            "higher",
        ),
    ]

    def reply_path(mode: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
        def get(r: dict[str, Any]) -> tuple[float, float]:
            figures = r["reply_path"][mode]
            return figures["exclusive"]["calls_per_s"], figures["direct"]["calls_per_s"]

        return get

    def cpu(mode: str, side: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
        def get(r: dict[str, Any]) -> tuple[float, float]:
            key = f"{side}_cpu_us_per_call"
            return r[mode]["isc"][key], r[mode]["raw"][key]

        return get

    if all("client_cpu_us_per_call" in r["sequential"]["isc"] for r in rounds):
        for mode in ("sequential", "pipelined"):
            for side in ("client", "server"):
                specs.append((f"{mode} {side} CPU us/call", cpu(mode, side), "lower"))

    for mode in ("sequential", "pipelined"):
        specs.append(
            (
                f"reply path, raw pika: exclusive queue / direct reply-to, {mode} calls/s",
                reply_path(mode),
                "higher",
            )
        )

    def mixed(figure: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
        def get(r: dict[str, Any]) -> tuple[float, float]:
            return r["mixed"]["mixed"][figure], r["mixed"]["alone"][figure]

        return get

    mixed_load = f"with {MIXED_SLOW_THREADS} threads on {MIXED_SLOW_WAIT:g} s calls / alone"
    for figure in ("p50", "p99"):
        specs.append(
            (
                f"mixed latency: fast-call {figure} ms ({MIXED_FAST_THREADS} threads), "
                + mixed_load,
                mixed(f"{figure}_ms"),
                "lower",
            )
        )
    specs.append(
        (
            f"mixed latency: fast calls/s ({MIXED_FAST_THREADS} threads), {mixed_load}",
            mixed("calls_per_s"),
            "higher",
        )
    )

    def codec_vs_raw(label: str, codec: str) -> Callable[[dict[str, Any]], tuple[float, float]]:
        def get(r: dict[str, Any]) -> tuple[float, float]:
            sweep = r["payload"][label]
            return sweep["isc"][codec]["calls_per_s"], sweep["raw"]["calls_per_s"]

        return get

    def typedjson_cost(label: str) -> Callable[[dict[str, Any]], tuple[float, None]]:
        def get(r: dict[str, Any]) -> tuple[float, None]:
            isc = r["payload"][label]["isc"]
            return isc["json"]["calls_per_s"] / isc["typedjson"]["calls_per_s"], None

        return get

    for label in SIZES:
        for codec in CODECS:
            specs.append((f"payload {label} {codec} calls/s", codec_vs_raw(label, codec), "higher"))
        specs.append(
            (f"payload {label} typedjson/json cost per call", typedjson_cost(label), "lower")
        )
    specs.append(
        (
            f"{SLOW_CALLS} concurrent 1 s calls: total s (vs ideal 1 s)",
            lambda r: (r["slow"]["seconds"], 1.0),
            "lower",
        )
    )
    rows: list[Row] = []
    for name, get, better in specs:
        pairs = [get(r) for r in rounds]
        isc_values = [p[0] for p in pairs]
        raw_values = [p[1] for p in pairs if p[1] is not None]
        # Without a baseline the figure is a ratio already (typedjson/json).
        ratios = [p[0] / p[1] for p in pairs if p[1] is not None] if raw_values else isc_values
        rows.append(
            {
                "metric": name,
                "isc": statistics.median(isc_values),
                "raw": statistics.median(raw_values) if raw_values else None,
                "ratio": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "better": better,
            }
        )
    return rows


def fmt(value: float | None) -> str:
    """A figure for the table."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_ratio(value: float) -> str:
    """A ratio for the table: two decimals, or two significant digits below 0.01."""
    return f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.2g}"


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| metric | isc (median) | raw (median) | isc/raw (median) | range | better |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['metric']} | {fmt(row['isc'])} | {fmt(row['raw'])} | "
            f"{fmt_ratio(row['ratio'])} | "
            f"{fmt_ratio(row['ratio_min'])}-{fmt_ratio(row['ratio_max'])} | "
            f"{row['better']} |"
        )
    return "\n".join(lines)


def chart(rows: list[Row], rounds: list[dict[str, Any]], path: Path) -> None:
    """Ratios (left) and payload calls/s per codec (right) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 8), gridspec_kw={"width_ratios": [3, 2]})
    names = [r["metric"] for r in rows][::-1]
    ratios = [r["ratio"] for r in rows][::-1]
    errors = [
        [r["ratio"] - r["ratio_min"] for r in rows][::-1],
        [r["ratio_max"] - r["ratio"] for r in rows][::-1],
    ]
    colors = [
        "tab:green" if (r["ratio"] >= 1) == (r["better"] == "higher") else "tab:red" for r in rows
    ][::-1]
    left.barh(names, ratios, xerr=errors, color=colors, capsize=2)
    left.axvline(1.0, color="black", linewidth=1)
    left.set_xscale("log")
    left.set_xlabel("isc / raw baseline (median of rounds; whiskers: min-max)")
    left.set_title("isc relative to raw pika, same broker, same rounds")
    left.tick_params(axis="y", labelsize=8)

    width = 0.8 / (len(CODECS) + 1)
    labels = list(SIZES)
    for k, codec in enumerate([*CODECS, "raw"]):
        values = []
        for label in labels:
            if codec == "raw":
                per_round = [r["payload"][label]["raw"]["calls_per_s"] for r in rounds]
            else:
                per_round = [r["payload"][label]["isc"][codec]["calls_per_s"] for r in rounds]
            values.append(statistics.median(per_round))
        right.bar([i + k * width for i in range(len(labels))], values, width, label=codec)
    right.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels)
    right.set_yscale("log")
    right.set_ylabel("sequential calls/s (median)")
    right.set_title("payload sweep (request and reply carry the payload)")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Run the suite and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="shorter measurements")
    parser.add_argument(
        "--fastpath",
        choices=("on", "off"),
        help=f"set {FASTPATH_ENV} (off: 0) for this process and the nodes it starts",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.fastpath is not None:
        wanted = "1" if args.fastpath == "on" else "0"
        if os.environ.get(FASTPATH_ENV) != wanted:
            # Start again with it set, so that isc (imported above) reads it from the start;
            # the node subprocesses inherit this environment.
            os.environ[FASTPATH_ENV] = wanted
            os.execv(sys.executable, [sys.executable, *sys.argv])
    settings = Settings(args.quick)
    t_start = time.perf_counter()
    RESULTS.mkdir(exist_ok=True)
    with ExitStack() as stack:
        if "ISC_URL" not in os.environ:
            print("==> starting a throwaway RabbitMQ (ISC_URL is not set)")
        url = stack.enter_context(broker())
        print(f"==> broker {redact_url(url)}; starting the isc nodes and the raw server")
        node = stack.enter_context(
            NodeProcess.serve(
                url, EXCHANGE, "calc:Calc", extra=["--pool", str(NODE_POOL), "--allow-pickle"]
            )
        )
        stack.enter_context(
            NodeProcess.serve(url, SLOW_EXCHANGE, "calc:Calc", extra=["--pool", str(SLOW_CALLS)])
        )
        raw_server = stack.enter_context(
            NodeProcess(
                [sys.executable, str(HERE / "raw_server.py"), url, RAW_QUEUE],
                ready_line="raw-server-ready",
            )
        )
        client = stack.enter_context(Client(url, exchange=EXCHANGE, invoke_timeout=60))
        slow_client = stack.enter_context(Client(url, exchange=SLOW_EXCHANGE, invoke_timeout=120))
        raw = RawClient(url, RAW_QUEUE)
        stack.callback(raw.close)
        raw_exclusive = RawClient(url, RAW_QUEUE, reply="exclusive")
        stack.callback(raw_exclusive.close)
        notify_conn = pika.BlockingConnection(pika.URLParameters(url))
        stack.callback(notify_conn.close)
        raw_notify = notify_conn.channel()
        raw_notify.exchange_declare(RAW_FANOUT, exchange_type="fanout", auto_delete=False)
        raw_notify.confirm_delivery()
        client.wait_connected(30)  # the client declares the isc fanout exchange
        counters = {
            "isc": FanoutCounter(url, fanout_exchange_name(EXCHANGE)),
            "raw": FanoutCounter(url, RAW_FANOUT),
        }
        for counter in counters.values():
            stack.callback(counter.close)

        print("==> warm-up")
        for i in range(200):
            client.calc.add(i, 1)
            raw.call(i, 1)
            raw_exclusive.call(i, 1)
        slow_client.calc.add(1, 1)

        rounds: list[dict[str, Any]] = []
        for round_no in range(args.rounds):
            t0 = time.perf_counter()
            print(f"==> round {round_no + 1}/{args.rounds}", end="", flush=True)
            rounds.append(
                run_round(
                    round_no,
                    settings,
                    client,
                    slow_client,
                    raw,
                    raw_exclusive,
                    raw_notify,
                    counters,
                    {"isc": node.pid, "raw": raw_server.pid},
                )
            )
            print(f" ({time.perf_counter() - t0:.1f} s)")

    rows = ratio_rows(rounds, isc_confirms(client) is not None)
    total = time.perf_counter() - t_start
    text = table(rows)
    print()
    print(text)
    print(f"\n{args.rounds} rounds, {total:.0f} s in all")
    result = {
        "meta": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "broker": "ISC_URL" if "ISC_URL" in os.environ else "throwaway RabbitMQNode",
            "rounds": args.rounds,
            "quick": args.quick,
            "total_seconds": total,
            "isc_notify_uses_publisher_confirms": isc_confirms(client) is not None,
            "default_codec": "typedjson",
            FASTPATH_ENV: os.environ.get(FASTPATH_ENV),
            "mixed_latency": {
                "fast_threads": MIXED_FAST_THREADS,
                "slow_threads": MIXED_SLOW_THREADS,
                "slow_wait_s": MIXED_SLOW_WAIT,
                "call_timeout_s": MIXED_CALL_TIMEOUT,
                "node_pool": NODE_POOL,
            },
        },
        "summary": rows,
        "rounds": rounds,
    }
    (RESULTS / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "table.md").write_text(text + "\n")
    chart(rows, rounds, RESULTS / "results.png")
    print(f"wrote {RESULTS / 'results.json'}, results.png and table.md")


if __name__ == "__main__":
    main()
