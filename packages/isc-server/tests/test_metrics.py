"""NodeMetrics: counting, bucketing, bounded tables and a snapshot every codec encodes."""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace

import pytest

from isc.codecs import get_codec
from isc.server import NodeMetrics, _metrics
from isc.server._metrics import COUNTERS, HandlerStats


class TestHandlerStats:
    def test_a_value_on_a_bound_counts_in_that_bucket(self) -> None:
        stats = HandlerStats((0.1, 1.0))
        stats.observe(0.1)
        stats.observe(0.05)
        stats.observe(0.5)
        stats.observe(1.0)
        stats.observe(7.0, failed=True)
        assert stats.buckets == [2, 2, 1]
        assert (stats.calls, stats.errors, stats.refused) == (5, 1, 0)
        assert stats.seconds == pytest.approx(8.65)
        assert stats.longest == 7.0

    def test_snapshot_is_a_copy(self) -> None:
        stats = HandlerStats((1.0,))
        stats.observe(0.5)
        snapshot = stats.snapshot()
        stats.observe(0.5)
        assert snapshot == {
            "calls": 1,
            "errors": 0,
            "refused": 0,
            "seconds": 0.5,
            "max": 0.5,
            "buckets": [1, 0],
        }


class TestNodeMetrics:
    def test_handlers_are_kept_per_service_and_kind(self) -> None:
        metrics = NodeMetrics(buckets=(0.5, 2))
        metrics.method("calc", "add").observe(0.1)
        metrics.method("calc", "add").observe(3.0, failed=True)
        metrics.method("other", "add").observe(0.1)
        metrics.handler("listeners", "calc", "record").observe(0.1)
        metrics.handler("timers", "calc", "tick").observe(0.1, failed=True)
        calc = metrics.snapshot("calc")
        assert calc["buckets"] == [0.5, 2.0]
        assert calc["methods"] == {
            "add": {
                "calls": 2,
                "errors": 1,
                "refused": 0,
                "seconds": 3.1,
                "max": 3.0,
                "buckets": [1, 0, 1],
            }
        }
        assert calc["listeners"]["record"]["calls"] == 1
        assert calc["timers"]["tick"]["errors"] == 1
        assert metrics.snapshot("other")["methods"]["add"]["calls"] == 1
        assert metrics.snapshot("nobody")["methods"] == {}

    def test_unknown_methods_make_no_entries(self) -> None:
        metrics = NodeMetrics()
        for _ in range(100):
            metrics.unknown_method("calc")
        snapshot = metrics.snapshot("calc")
        assert snapshot["unknown_methods"] == 100
        assert snapshot["methods"] == {}

    def test_node_wide_counters(self) -> None:
        metrics = NodeMetrics()
        metrics.count("bad_requests")
        metrics.count("bad_requests")
        metrics.count("bad_notifications")
        dropped = metrics.snapshot("calc")["dropped"]
        assert set(dropped) == set(COUNTERS)
        assert dropped["bad_requests"] == 2
        assert dropped["bad_notifications"] == 1
        assert dropped["expired_requests"] == 0
        with pytest.raises(KeyError):
            metrics.count("made_up")

    def test_snapshot_says_which_node_and_since_when(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = iter([1_800_000_000.0, 1_800_000_042.5, 1_800_000_100.0])
        monkeypatch.setattr(_metrics, "time", SimpleNamespace(time=lambda: next(clock)))
        metrics = NodeMetrics()  # counting starts now: the first reading of the clock
        first = metrics.snapshot("calc")
        assert first["node"] == {"host": socket.gethostname(), "pid": os.getpid()}
        assert first["since"] == 1_800_000_000.0
        assert first["uptime"] == 42.5
        later = metrics.snapshot("calc")
        assert later["since"] == 1_800_000_000.0
        assert later["uptime"] == 100.0

    @pytest.mark.parametrize("buckets", [(), (1.0, 0.5), (0, 1), (1, 1)])
    def test_bad_buckets(self, buckets: tuple[float, ...]) -> None:
        with pytest.raises(ValueError, match="increasing positive seconds"):
            NodeMetrics(buckets=buckets)

    @pytest.mark.parametrize("codec_name", ["json", "typedjson", "pickle", "msgpack"])
    def test_every_codec_carries_the_snapshot(self, codec_name: str) -> None:
        metrics = NodeMetrics()
        metrics.method("calc", "add").observe(0.0123)
        metrics.method("calc", "add").refused += 1
        metrics.handler("timers", "calc", "tick").observe(99.0, failed=True)
        metrics.unknown_method("calc")
        metrics.count("expired_requests")
        snapshot = metrics.snapshot("calc")
        codec = get_codec(codec_name)
        assert codec.decode(codec.encode(snapshot)) == snapshot
