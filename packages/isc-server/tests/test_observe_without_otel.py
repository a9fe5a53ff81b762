"""Without opentelemetry-api a node still counts and names its calls, and imports nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_node_without_opentelemetry() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        import isc.server
        from isc.core import Request
        from isc.server._logcontext import log_context
        from isc.server._observe import Observer

        observer = Observer(isc.server.NodeMetrics(), "x")
        scope = observer.call("calc", Request("add", headers={"traceparent": "00-ab-cd-01"}))
        assert scope._span is None
        assert log_context()[:2] == ("calc", "add")
        scope.succeeded()
        assert observer.metrics.snapshot("calc")["methods"]["add"]["calls"] == 1
        loaded = [name for name, module in sys.modules.items() if module is not None]
        assert not any(name.startswith("opentelemetry") for name in loaded), loaded
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
