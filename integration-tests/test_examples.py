"""The documentation's example programs (docs/examples) run against the suite's broker.

Each chapter's servers run as subprocesses (ready once their services answer ``_inspect``),
its client program runs to completion, and both must behave as the documentation says. The
programs read ``ISC_URL``, ``ISC_EXCHANGE``, ``ISC_CODEC`` (and chapter 5 ``ISC_TICK``) from
the environment, which the subprocesses inherit from this process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from isc.core.codecs import AbstractCodec
from isc_testing import wait_for
from isc_testing.nodes import NodeProcess, service_answers

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
#: Seconds a client program may take (chapter 2 spends ~4 s sleeping and timing out).
CLIENT_TIMEOUT = 60.0
#: The timer period chapter 5 runs with here (the documented 5 s would take 30 s).
TICK = 0.5


@pytest.fixture(autouse=True)
def example_env(
    amqp_url: str, exchange: str, codec: AbstractCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point the example programs at the suite's broker, this test's exchange and codec."""
    monkeypatch.setenv("ISC_URL", amqp_url)
    monkeypatch.setenv("ISC_EXCHANGE", exchange)
    monkeypatch.setenv("ISC_CODEC", codec.content_type)
    monkeypatch.setenv("ISC_TICK", str(TICK))


@pytest.fixture
def server(amqp_url: str, exchange: str) -> Callable[..., NodeProcess]:
    """Makes an example server program, not started yet, ready once ``service`` answers."""

    def make(*path: str, service: str) -> NodeProcess:
        return NodeProcess(
            [sys.executable, str(EXAMPLES.joinpath(*path))],
            ready_probe=service_answers(amqp_url, exchange, service),
        )

    return make


def run_client(*path: str) -> list[str]:
    """Run an example client program; it must exit 0. Returns its output lines."""
    return run_clients(path)[0]


def run_clients(*paths: Sequence[str]) -> list[list[str]]:
    """Run example client programs side by side (each must exit 0); their output lines."""
    programs = [EXAMPLES.joinpath(*path) for path in paths]
    running = [
        subprocess.Popen(
            [sys.executable, str(program)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=program.parent,
        )
        for program in programs
    ]
    outputs = []
    for program, proc in zip(programs, running):
        try:
            stdout, stderr = proc.communicate(timeout=CLIENT_TIMEOUT)
        finally:
            proc.kill()
        assert proc.returncode == 0, (
            f"{program.name} exited {proc.returncode}\n--- stdout\n{stdout}--- stderr\n{stderr}"
        )
        outputs.append(stdout.splitlines())
    return outputs


def stop_all(servers: Sequence[NodeProcess]) -> None:
    """SIGTERM every server: each must stop gracefully, with exit code 0."""
    codes = {proc.argv[-1]: proc.stop() for proc in servers}
    failed = {name: code for name, code in codes.items() if code != 0}
    assert not failed, f"servers did not exit 0: {failed}\n" + "\n".join(
        f"--- {proc.argv[-1]}\n{proc.output}" for proc in servers
    )


def wait_for_line(proc: NodeProcess, line: str, timeout: float = 10.0) -> None:
    """Wait until ``proc`` has printed ``line`` (raising with its output if it does not)."""
    try:
        wait_for(lambda: line in proc.lines, timeout, f"{line!r} from {proc.argv[-1]}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; output so far:\n{proc.output}") from None


#: Runs a program that has no test plumbing against the suite's broker (see its docstring).
RUN_EXAMPLE = Path(__file__).resolve().parent / "isc_testing" / "run_example.py"


def test_quickstart_programs_run_unchanged(amqp_url: str, exchange: str) -> None:
    program = EXAMPLES / "quickstart" / "server.py"
    node = NodeProcess(
        [sys.executable, str(RUN_EXAMPLE), str(program)],
        ready_probe=service_answers(amqp_url, exchange, "example"),
    )
    with node:
        done = subprocess.run(
            [sys.executable, str(RUN_EXAMPLE), str(EXAMPLES / "quickstart" / "client.py")],
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "5",
            "raise_error failed: Exception: testing",
            "private_method refused: PermissionError: You are not allowed to call unexposed "
            "method private_method.",
            "slow_method did not answer within 1 s",
        ]
        wait_for_line(node, "Got stuff: {'foo': 'bar'}")
        # No logging configured: the node shows itself on stderr (NodeProcess reads both).
        assert any("isc.server: node serving example on " in line for line in node.lines)
        stop_all([node])


# Each chapter's client runs side by side with its asyncio form (isc.client.aio).


def test_chapter2_comprehensive_example(server: Callable[..., NodeProcess]) -> None:
    with server("chapter2", "server.py", service="example") as node:
        # The clients' asserts are the test.
        run_clients(("chapter2", "client.py"), ("chapter2", "client_asyncio.py"))
        wait_for_line(node, "Got stuff: {'foo': 'bar'}")
        wait_for_line(node, "Got stuff: {'foo': 'bar', 'via': 'asyncio'}")
        stop_all([node])


def test_chapter3_simple_server_and_client(server: Callable[..., NodeProcess]) -> None:
    with server("chapter3", "users_service.py", service="users") as node:
        threaded, asyncio_form = run_clients(("chapter3", "app.py"), ("chapter3", "app_asyncio.py"))
        assert threaded == ["Andrew", "Victoria", "None"]
        assert asyncio_form == ["Andrew", "['Victoria', None, 'Andrew']"]
        stop_all([node])


def test_chapter4_two_services(server: Callable[..., NodeProcess]) -> None:
    users = server("chapter4", "users_service.py", service="users")
    messages = server("chapter4", "messages_service.py", service="messages")
    with users, messages:
        outputs = run_clients(("chapter4", "app.py"), ("chapter4", "app_asyncio.py"))
        assert outputs == [["Message send!"], ["Message send!"]]
        wait_for_line(users, "New message for user Andrew: Hello!")
        wait_for_line(users, "New message for user Andrew: Hello from asyncio!")
        stop_all([users, messages])


@pytest.mark.parametrize("app", ["app.py", "app_asyncio.py"])
def test_chapter5_timers(server: Callable[..., NodeProcess], app: str) -> None:
    # Each form against a node of its own: both reset the one tick counter.
    with server("chapter5", "tick_service.py", service="ticker") as node:
        lines = run_client("chapter5", app)
        stop_all([node])
    assert len(lines) == 5, lines
    reset, first, second, reset_again, third = (int(line) for line in lines)
    # The app waits two timer periods between reads: about two ticks each time. Allow one
    # tick either way for scheduling jitter; the shape must hold exactly.
    assert reset <= 1, lines
    assert 1 <= first <= 3, lines
    assert first + 1 <= second <= first + 3, lines
    assert reset_again <= 1, lines
    assert 1 <= third <= 3, lines
