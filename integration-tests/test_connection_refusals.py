"""Wrong credentials against the suite's broker: refused at once, in one line, no retries.

The broker refuses ``guest`` with a wrong password (403 ACCESS_REFUSED at login); isc gives
up at once with ``AccessRefusedError`` and a "check the credentials" hint, where it used to
retry forever (a node wrote 80 lines in 20 s, a client timed out after 20 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from isc.client import AccessRefusedError, Client
from isc_testing.nodes import SERVICES_DIR

pytestmark = pytest.mark.codec_independent

WRONG = "n0t-the-Passw0rd"


def with_wrong_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'guest'}:{WRONG}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ISC_URL", "ISC_EXCHANGE")}
    env["PYTHONPATH"] = os.pathsep.join([str(SERVICES_DIR), *sys.path])
    return subprocess.run(
        [sys.executable, "-m", "isc.client.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_a_client_call_fails_at_once_with_a_hint(amqp_url: str, exchange: str) -> None:
    client = Client(url=with_wrong_password(amqp_url), exchange=exchange)
    started = time.monotonic()
    try:
        with pytest.raises(AccessRefusedError, match="check the credentials") as caught:
            client.calc.add(1, 2)
        assert time.monotonic() - started < 10  # was: the 20 s invoke timeout
        assert WRONG not in str(caught.value)
        with pytest.raises(AccessRefusedError):  # and every later call, without waiting
            client.calc.add(1, 2)
        with pytest.raises(AccessRefusedError):
            client.wait_connected(5)
        assert WRONG not in repr(client)
    finally:
        client.stop()


def test_isc_ping_says_so_in_one_line(amqp_url: str, exchange: str) -> None:
    done = cli("ping", "--url", with_wrong_password(amqp_url), "--exchange", exchange)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: the broker at ")
    assert "check the credentials" in lines[0]
    assert WRONG not in done.stderr


def test_isc_run_exits_non_zero_with_one_error_line(amqp_url: str, exchange: str) -> None:
    started = time.monotonic()
    done = cli(
        "run",
        "calc:Calc",
        "--url",
        with_wrong_password(amqp_url),
        "--exchange",
        exchange,
        timeout=30,
    )
    assert time.monotonic() - started < 20
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert "check the credentials" in errors[0]
    assert "pika" not in done.stderr  # pika's own lines about the failed attempt are quiet
    assert len(done.stderr.splitlines()) <= 5, done.stderr
    assert WRONG not in done.stderr
