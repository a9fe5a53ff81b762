"""The ``isc`` command as a subprocess against the suite's broker and a calc node."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from isc.client import Client
from isc_testing import wait_for
from isc_testing.nodes import SERVICES_DIR, NodeProcess, service_answers

pytestmark = pytest.mark.codec_independent

#: Every CLI run is bounded: a hung command fails the test instead of the whole run.
CLI_TIMEOUT = 60.0


def isc(*argv: str, url: str, exchange: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m isc.client.cli ARGV --url URL --exchange EXCHANGE``."""
    env = dict(os.environ)
    env.pop("ISC_URL", None)
    env.pop("ISC_EXCHANGE", None)
    return subprocess.run(
        [sys.executable, "-m", "isc.client.cli", *argv, "--url", url, "--exchange", exchange],
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def password_of(url: str) -> str:
    """``:PASSWORD@`` of ``url``: what must never appear in output."""
    return f":{urlsplit(url).password}@"


@pytest.fixture
def calc_node(amqp_url: str, exchange: str) -> Iterator[NodeProcess]:
    with NodeProcess.serve(amqp_url, exchange, "calc:Calc", "calc:Events") as node:
        yield node


@pytest.mark.usefixtures("calc_node")
class TestAgainstANode:
    def test_call(self, amqp_url: str, exchange: str) -> None:
        done = isc("call", "calc.add", "2", "3", url=amqp_url, exchange=exchange)
        assert (done.returncode, done.stderr) == (0, "")
        assert json.loads(done.stdout) == 5

    def test_call_with_strings_and_kwargs(self, amqp_url: str, exchange: str) -> None:
        done = isc(
            "call",
            "calc.echo",
            "hello",
            "[1, 2]",
            '"7"',
            "--kwargs",
            '{"flag": true, "n": null}',
            url=amqp_url,
            exchange=exchange,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [["hello", [1, 2], "7"], {"flag": True, "n": None}]

    def test_call_kwargs_only(self, amqp_url: str, exchange: str) -> None:
        done = isc(
            "call", "calc.add", "--kwargs", '{"a": 1, "b": 2}', url=amqp_url, exchange=exchange
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == 3

    def test_remote_error(self, amqp_url: str, exchange: str) -> None:
        done = isc("call", "calc.raise_error", url=amqp_url, exchange=exchange)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.strip() == "error: Exception: testing"

    def test_remote_type_error(self, amqp_url: str, exchange: str) -> None:
        done = isc("call", "calc.add", "2", "x", url=amqp_url, exchange=exchange)
        assert done.returncode == 1
        assert done.stderr.startswith("error: TypeError: ")

    def test_timeout(self, amqp_url: str, exchange: str) -> None:
        done = isc(
            "call", "calc.slow_method", "5", "--timeout", "0.5", url=amqp_url, exchange=exchange
        )
        assert done.returncode == 2
        assert "timed out" in done.stderr
        assert "calc.slow_method" in done.stderr

    def test_unknown_service(self, amqp_url: str, exchange: str) -> None:
        done = isc("call", "nobody.here", url=amqp_url, exchange=exchange)
        assert done.returncode == 1
        assert "no node serves 'nobody'" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1

    def test_notify(self, amqp_url: str, exchange: str) -> None:
        done = isc(
            "notify", "bang", "1", "x", "--kwargs", '{"k": 2}', url=amqp_url, exchange=exchange
        )
        assert done.returncode == 0, done.stderr
        with Client(amqp_url, exchange=exchange, invoke_timeout=5) as client:
            received = wait_for(client.events.get_received, 10, "the notification")
        assert received == [[[1, "x"], {"k": 2}]]

    def test_inspect_json(self, amqp_url: str, exchange: str) -> None:
        done = isc("inspect", "calc", "--json", url=amqp_url, exchange=exchange)
        assert done.returncode == 0, done.stderr
        description: dict[str, Any] = json.loads(done.stdout)
        assert "add" in description["exposed"]
        assert "private_method" not in description["exposed"]
        assert "metrics" in description
        assert "\n  " in done.stdout  # indented

    def test_inspect_one_method(self, amqp_url: str, exchange: str) -> None:
        done = isc("inspect", "calc.add", url=amqp_url, exchange=exchange)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[:3] == [
            "service calc",
            "  exposed methods:",
            "    add(a: 'Any', b: 'Any', wait: 'float' = ...) -> 'Any'",
        ]
        handlers = [line.split()[1] for line in lines if line.split()[:1] == ["method"]]
        assert set(handlers) <= {"add"}  # only the method asked for
        done = isc("inspect", "calc.nope", url=amqp_url, exchange=exchange)
        assert done.returncode == 1
        assert done.stderr.startswith("error: service 'calc' exposes no method 'nope' (it has: ")
        done = isc("inspect", "nobody.here", url=amqp_url, exchange=exchange)
        assert done.returncode == 1
        assert "no node serves 'nobody.here' nor 'nobody': expected SERVICE or" in done.stderr

    def test_pickle_refusal_names_the_flag(self, amqp_url: str, exchange: str) -> None:
        done = isc(
            "call", "calc.add", "1", "2", "--codec", "pickle", url=amqp_url, exchange=exchange
        )
        assert done.returncode == 1
        assert "CodecNotAllowedError" in done.stderr
        assert "isc run --allow-pickle" in done.stderr

    def test_inspect_shows_a_metrics_table(self, amqp_url: str, exchange: str) -> None:
        with Client(amqp_url, exchange=exchange, invoke_timeout=10) as client:
            for i in range(4):
                client.calc.add(i, i)
        done = isc("inspect", "calc", url=amqp_url, exchange=exchange)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "service calc"
        assert "    add(a: 'Any', b: 'Any', wait: 'float' = ...) -> 'Any'" in lines
        header = next(line for line in lines if line.split()[:2] == ["kind", "handler"])
        assert header.split()[2:] == ["calls", "errors", "refused", "mean", "p50", "p99", "max"]
        add = next(line.split() for line in lines if line.split()[:2] == ["method", "add"])
        assert add[2:5] == ["4", "0", "0"]


def test_ping(amqp_url: str, exchange: str) -> None:
    done = isc("ping", url=amqp_url, exchange=exchange)
    assert done.returncode == 0, done.stderr
    assert "reachable" in done.stdout
    assert "round trip" in done.stdout
    assert password_of(amqp_url) not in done.stdout + done.stderr


def test_broker_down(exchange: str) -> None:
    url = "amqp://someone:s3cr3t-pw@127.0.0.1:1/"
    done = isc("ping", "--connect-timeout", "1", url=url, exchange=exchange)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "amqp://someone:***@127.0.0.1:1/" in done.stderr
    assert "s3cr3t-pw" not in done.stderr


def test_run_serves_until_sigterm(amqp_url: str, exchange: str) -> None:
    node = NodeProcess(
        [
            sys.executable,
            "-m",
            "isc.client.cli",
            "run",
            "calc:Calc",
            "--pool",
            "4",
            "--url",
            amqp_url,
            "--exchange",
            exchange,
        ],
        ready_probe=service_answers(amqp_url, exchange, "calc"),
    )
    with node:
        done = isc("call", "calc.add", "20", "22", url=amqp_url, exchange=exchange)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == 42
        with Client(amqp_url, exchange=exchange, invoke_timeout=10) as client:
            future = client.calc.log.call_async("from the service")
            future.result()
            cid = future.extra["correlation_id"]
        assert node.stop(signal.SIGTERM) == 0
    assert "node serving calc" in node.output
    # a line the service's own code logged names the call it belongs to (isc run's format)
    assert f" calc [calc.log {cid}]: from the service" in node.output
    assert "node stopped" in node.output
    assert password_of(amqp_url) not in node.output


def test_run_imports_from_the_current_directory(
    amqp_url: str, exchange: str, tmp_path: Path
) -> None:
    """The ``isc`` console script (not ``python -m``) finds ``module:Class`` in the cwd."""
    script = shutil.which("isc", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the isc console script is not installed in this environment")
    (tmp_path / "greeting.py").write_text(
        textwrap.dedent(
            """
            from isc.server import expose

            class Greeter:
                name = "greeter"

                @expose
                def hello(self, who):
                    return "hello " + who
            """
        )
    )
    argv = ["run", "greeting:Greeter", "--url", amqp_url, "--exchange", exchange]
    node = NodeProcess(
        ["sh", "-c", 'cd "$0" && exec "$@"', str(tmp_path), script, *argv],
        ready_probe=service_answers(amqp_url, exchange, "greeter"),
    )
    with node:
        done = isc("call", "greeter.hello", "you", url=amqp_url, exchange=exchange)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == "hello you"
        assert node.stop(signal.SIGTERM) == 0


def test_run_reports_a_bad_service(amqp_url: str, exchange: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SERVICES_DIR), *sys.path]))
    done = subprocess.run(
        [sys.executable, "-m", "isc.client.cli", "run", "calc:Nope", "--url", amqp_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot start the node" in done.stderr
    assert "Nope" in done.stderr
