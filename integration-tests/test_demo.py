"""``make demo`` on a broker of one's own (``ISC_URL``) leaves that broker as it found it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pika
import pika.exceptions
import pytest

from isc.core import fanout_exchange_name, service_queue_name

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.codec_independent, pytest.mark.slow, pytest.mark.tooling]


def exists(url: str, kind: str, name: str) -> bool:
    """Whether the queue or exchange ``name`` exists on the broker (a passive declare)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        if kind == "queue":
            channel.queue_declare(name, passive=True)
        else:
            channel.exchange_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:  # NOT_FOUND
            raise
        return False
    finally:
        if connection.is_open:
            connection.close()
    return True


def test_demo_on_isc_url_removes_its_queue_and_exchanges(amqp_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ISC_EXCHANGE", "ISC_CODEC")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        env={**env, "ISC_URL": amqp_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    found = re.search(r"server\.py \(exchange '(isctest-demo-\w+)'\)", done.stdout)
    assert found, f"the demo did not use an exchange of its own:\n{done.stdout}"
    exchange = found.group(1)
    queue = service_queue_name(exchange, "example")
    assert f"removed from the broker: queue {queue}" in done.stdout, done.stdout
    assert not exists(amqp_url, "queue", queue)
    assert not exists(amqp_url, "exchange", exchange)
    assert not exists(amqp_url, "exchange", fanout_exchange_name(exchange))
