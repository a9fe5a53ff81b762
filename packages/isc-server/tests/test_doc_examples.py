"""Every ``python`` block of the documentation is a file that a test runs.

A page shows code only by including a file of ``docs/examples`` with the snippets extension
(docs/development.md), or, in docs/testing.md, by quoting the example project word for word
(``test_testing_examples.py`` checks that). :data:`TESTED` says which test runs each included
file; the fragments no program runs on its own (a logging set-up, a traced call, a service
using ``run_blocking``) are run here.
"""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

from isc.server.testing import ServiceHarness

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
INCLUDE = re.compile(r'^--8<-- "([^"]+)"$')
FENCE = re.compile(r"^(`{3,})(\S*)")

#: Each included example file, and the test that runs it: a test file that names the file,
#: or ``docs`` when a page's console block runs it (integration-tests/test_doc_commands.py).
TESTED = {
    "docs/examples/quickstart/server.py": "integration-tests/test_examples.py",
    "docs/examples/quickstart/client.py": "integration-tests/test_examples.py",
    "docs/examples/chapter2/server.py": "integration-tests/test_examples.py",
    "docs/examples/chapter2/client.py": "integration-tests/test_examples.py",
    "docs/examples/chapter3/users_service.py": "integration-tests/test_examples.py",
    "docs/examples/chapter3/app.py": "integration-tests/test_examples.py",
    "docs/examples/chapter4/users_service.py": "integration-tests/test_examples.py",
    "docs/examples/chapter4/messages_service.py": "integration-tests/test_examples.py",
    "docs/examples/chapter4/app.py": "integration-tests/test_examples.py",
    "docs/examples/chapter4/superapp/models.py": "integration-tests/test_examples.py",
    "docs/examples/chapter5/tick_service.py": "integration-tests/test_examples.py",
    "docs/examples/chapter5/app.py": "integration-tests/test_examples.py",
    "docs/examples/chapter2/client_asyncio.py": "integration-tests/test_examples.py",
    "docs/examples/chapter3/app_asyncio.py": "integration-tests/test_examples.py",
    "docs/examples/chapter4/app_asyncio.py": "integration-tests/test_examples.py",
    "docs/examples/chapter5/app_asyncio.py": "integration-tests/test_examples.py",
    "docs/examples/asyncio/fastapi_app.py": "integration-tests/test_aio_client.py",
    "docs/examples/client_codecs.py": "packages/isc-codecs/tests/test_docs_codecs.py",
    "docs/examples/custom_codec.py": "packages/isc-codecs/tests/test_docs_codecs.py",
    "docs/examples/cli/myservices.py": "docs",
    "docs/examples/guide/users_node.py": "docs",
    "docs/examples/guide/calling.py": "docs",
    "docs/examples/guide/log_setup.py": "packages/isc-server/tests/test_doc_examples.py",
    "docs/examples/guide/tracing.py": "packages/isc-server/tests/test_doc_examples.py",
    "docs/examples/reports.py": "packages/isc-server/tests/test_doc_examples.py",
    "docs/examples/delivery_modes/orders.py": "packages/isc-server/tests/test_doc_examples.py",
}
#: What the runner names when it runs a file indirectly (default: the file's name).
RUN_AS = {"docs/examples/chapter4/superapp/models.py": "chapter4"}  # chapter 4's services import it


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """(line, text) of each top-level python block of ``page`` (not those shown in a block)."""
    blocks: list[tuple[int, str]] = []
    fence: str | None = None
    start, body, is_python = 0, [], False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, is_python, start, body = match.group(1), match.group(2) == "python", number, []
        elif fence is not None and line.strip() == fence:
            if is_python:
                blocks.append((start, "\n".join(body)))
            fence = None
        elif fence is not None:
            body.append(line)
    return blocks


def test_every_python_block_is_an_included_file_that_a_test_runs() -> None:
    testing_sources = [path.read_text() for path in (EXAMPLES / "testing").glob("*.py")]
    doc_commands = "\n".join(
        line
        for page in DOCS.glob("*.md")
        for line in page.read_text().splitlines()
        if line.startswith("$ ")
    )
    seen = 0
    for page in sorted(DOCS.glob("*.md")):
        for line, block in python_blocks(page):
            seen += 1
            where = f"docs/{page.name}:{line}"
            include = INCLUDE.match(block.strip())
            if include is None:
                assert page.name == "testing.md", (
                    f"{where}: show code by including a tested file of docs/examples "
                    "(see docs/development.md), not inline"
                )
                assert any(block.strip() in source for source in testing_sources), where
                continue
            path = include.group(1)
            assert path in TESTED, f"{where}: {path} is in no test (add it to TESTED)"
            runner = TESTED[path]
            name = RUN_AS.get(path, Path(path).stem)
            evidence = doc_commands if runner == "docs" else (ROOT / runner).read_text()
            assert name in evidence, f"{where}: {runner} does not run {path}"
    assert seen >= 20, "the pages lost their examples"


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (logging and tracing set-ups are process-wide)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_logging_setup_names_the_call_in_a_services_log_lines() -> None:
    done = run_python(
        f"""
        import logging, runpy
        from isc.server import expose
        from isc.server.testing import ServiceHarness

        runpy.run_path({str(EXAMPLES / "guide" / "log_setup.py")!r})

        class Calc:
            name = "calc"

            @expose
            def add(self, a, b):
                if a < 0:
                    logging.getLogger("calc").warning("negative input")
                return a + b

        ServiceHarness(Calc()).call("add", -1, 2)
        logging.getLogger("calc").info("outside a call")
        """
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    # the format of the guide's "Log lines that name their call"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d [\d:,]+ WARNING calc \[calc\.add [0-9a-f-]+\]: negative input", lines[0]
    ), lines[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d [\d:,]+ INFO calc: outside a call", lines[1]), lines[1]


def test_the_traced_call_runs_in_the_callers_span() -> None:
    done = run_python(
        f"""
        import runpy
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from isc.client.testing import FakeClient

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)

        client = FakeClient()
        client.answer("orders", "place", "placed")
        checkout = runpy.run_path({str(EXAMPLES / "guide" / "tracing.py")!r})["checkout"]
        checkout(client, {{"item": "apple"}})
        assert client.calls == [("orders", "place", ({{"item": "apple"}},), {{}})], client.calls
        print(*[span.name for span in exporter.get_finished_spans()])
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["checkout"]


def test_the_blocking_renderer_runs_in_a_thread_and_answers() -> None:
    example = runpy.run_path(str(EXAMPLES / "reports.py"))
    reports = ServiceHarness(example["Reports"]())
    pdf = reports.call("render", 3)
    assert pdf == example["render_pdf"](3)
    assert pdf.startswith(b"\x78\xda")  # zlib, best compression


def test_the_delivery_modes_example_runs_its_listeners_and_timers() -> None:
    example = runpy.run_path(str(EXAMPLES / "delivery_modes" / "orders.py"))
    orders = ServiceHarness(example["Orders"]())
    assert orders.events == {"order.placed": ["charge", "warm_cache"], "order.refunded": ["refund"]}
    assert orders.timers == {"send_digest": 60.0, "trim_local_cache": 60.0}
    assert orders.notify("order.placed", {"id": 7}) == 2  # both modes' listeners ran
    orders.notify("order.refunded", {"id": 7})
    orders.fire_timer("send_digest")
    orders.fire_timer("trim_local_cache")
    assert orders.call("report") == {"charged": [7], "refunded": [7], "digests": 1}
    described = orders.call("_inspect")
    assert described["listener_modes"]["charge"] == {"order.placed": "service"}
    assert described["timers"]["send_digest"] == [{"timeout": 60.0, "scope": "cluster"}]
