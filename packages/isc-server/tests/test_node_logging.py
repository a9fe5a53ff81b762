"""A node is visible when its program configured no logging (``python server.py``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

#: A node over the in-memory transport that stops itself once ready; the test adds a set-up.
PROGRAM = """
import gevent
from isc.client.testing.memory import MemoryBroker
from isc.server import Node, expose

{setup}

class Calc:
    name = "calc"

    @expose
    def add(self, a, b):
        return a + b

node = Node(exchange="mem", transport=MemoryBroker().transport)
node.register_service(Calc())
gevent.spawn(lambda: node.wait_for_ready(10) and node.stop())
node.run()
import logging
logging.getLogger("isc.server").info("after run: not shown")
"""


def run_node(setup: str = "") -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(PROGRAM).format(setup=setup)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_node_logs_to_stderr_when_nothing_is_configured() -> None:
    done = run_node()
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    serving = [line for line in lines if " INFO    isc.server: node serving calc on " in line]
    assert len(serving) == 1, done.stderr
    assert any(line.endswith("INFO    isc.server: node stopped") for line in lines)
    assert "after run" not in done.stderr  # the handler lives as long as run()
    assert done.stdout == ""


def test_a_configured_program_keeps_its_own_logging() -> None:
    done = run_node("import logging; logging.basicConfig(level=logging.WARNING)")
    assert done.returncode == 0, done.stderr
    assert "node serving" not in done.stderr
    done = run_node("import logging; logging.getLogger('isc').addHandler(logging.NullHandler())")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_set_logging_level_is_kept() -> None:
    done = run_node("import logging; logging.getLogger('isc').setLevel(logging.WARNING)")
    assert done.returncode == 0, done.stderr
    assert "node serving" not in done.stderr
