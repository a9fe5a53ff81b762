"""Interoperability with the original isclib 1.2, both ways, over a real broker.

isclib 1.2 runs in a virtualenv of its own (``isc_testing.legacy``, built on first use): an
old client script calls an isc 2 node, and an isc 2 client calls and notifies an old node.
Only the codecs isclib 1.2 has are exercised: json and typedjson, and pickle (isclib 1.x's
default; the isc 2 node accepts it with ``--allow-pickle``). msgpack is skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pika
import pytest

from isc.client import Client, RemoteException
from isc.client.aio import AsyncClient
from isc.core import AbstractCodec
from isc.core.naming import dead_letter_queue_name, listener_queue_name
from isc_testing import wait_for
from isc_testing.legacy import LegacyEnv, LegacyEnvError, ensure_legacy_env, run_legacy_script
from isc_testing.nodes import NodeProcess

#: The codecs isclib 1.2 speaks.
LEGACY_CODECS = ("json", "typedjson", "pickle")
OLD_NODE_READY = "isclib12-node-ready"
RESULT_PREFIX = "RESULT "


@pytest.fixture(scope="session")
def legacy_env() -> LegacyEnv:
    """The isclib 1.2 virtualenv: a skip locally, a failure under CI, if it cannot be built."""
    try:
        return ensure_legacy_env()
    except LegacyEnvError as exc:
        message = f"cannot build the isclib 1.2 virtualenv (needs PyPI): {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def legacy_codec(codec: AbstractCodec) -> AbstractCodec:
    """The codec under test, if isclib 1.2 has it."""
    if codec.content_type not in LEGACY_CODECS:
        pytest.skip(
            f"isclib 1.2 has no {codec.content_type} codec (it has json, typedjson, pickle)"
        )
    return codec


@pytest.fixture
def new_node(amqp_url: str, exchange: str, legacy_codec: AbstractCodec) -> Iterator[NodeProcess]:
    """An isc 2 node serving ``calc`` (accepting pickle when that is the codec under test)."""
    extra = ["--allow-pickle"] if legacy_codec.content_type == "pickle" else []
    with NodeProcess.serve(amqp_url, exchange, "calc:Calc", extra=extra) as node:
        yield node


@pytest.fixture
def old_node(
    legacy_codec: AbstractCodec, legacy_env: LegacyEnv, amqp_url: str, exchange: str
) -> Iterator[NodeProcess]:
    """An isclib 1.2 node serving ``legacy`` (integration-tests/legacy/old_node.py)."""
    node = NodeProcess(
        legacy_env.command("old_node.py", amqp_url, exchange), ready_line=OLD_NODE_READY
    )
    with node:
        yield node


@pytest.fixture
def client(
    amqp_url: str, exchange: str, legacy_codec: AbstractCodec, old_node: NodeProcess
) -> Iterator[Client]:
    """An isc 2 client speaking the codec under test to the old node."""
    c = Client(amqp_url, exchange=exchange, codec=legacy_codec, invoke_timeout=10)
    yield c
    c.stop()


def typed_values() -> list[Any]:
    """Values that only typedjson (and pickle) carry, in the forms isclib 1.2 tags."""
    return [
        datetime(2018, 1, 24, 17, 59, 40, 123),
        datetime(2026, 11, 30, 12, 0, 5, 250000, tzinfo=timezone(timedelta(hours=2))),
        UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\xff bytes",
    ]


# -- old client -> isc 2 node ----------------------------------------------------------------


def test_old_client_calls_new_node(
    legacy_codec: AbstractCodec,
    legacy_env: LegacyEnv,
    amqp_url: str,
    exchange: str,
    new_node: NodeProcess,
) -> None:
    name = legacy_codec.content_type
    done = run_legacy_script(legacy_env, "old_client.py", amqp_url, exchange, name)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        pytest.fail(
            f"old client failed (exit code {done.returncode}):\n{done.stdout}\n{done.stderr}"
            f"\n--- isc 2 node:\n{new_node.output}",
            pytrace=False,
        )
    results: dict[str, dict[str, Any]] = json.loads(lines[-1][len(RESULT_PREFIX) :])

    def remote_error(check: str) -> str:
        outcome = results[check]
        assert not outcome["ok"], f"{check}: expected a RemoteException, got {outcome}"
        assert outcome["type"] == "RemoteException", f"{check}: {outcome}"
        message: str = outcome["message"]
        assert message, f"{check}: an empty error message reads as success on isclib 1.x"
        return message

    assert results["add"] == {"ok": True, "value": 5}
    assert results["add_kwargs"] == {"ok": True, "value": 42}
    assert remote_error("raise_error") == "testing"
    # isclib 1.x clients treat a falsy error slot as success: isc 2 sends the type name.
    assert remote_error("raise_empty") == "ValueError"
    assert "private_method" in remote_error("private_method")
    assert "no_such_method" in remote_error("missing_method")
    remote_error("wrong_arguments")
    remote_error("too_many_arguments")
    assert results["add_after_errors"] == {"ok": True, "value": 42}
    if name in ("typedjson", "pickle"):
        trip = results["typed_round_trip"]
        assert trip["ok"], trip
        assert trip["equal"], f"sent {trip['sent']}, got back {trip['returned']}"
        assert trip["types"] == ["datetime", "datetime", "UUID", "bytes", "datetime"]


def test_old_client_notifications_reach_a_service_mode_listener(
    legacy_codec: AbstractCodec, legacy_env: LegacyEnv, amqp_url: str, exchange: str
) -> None:
    """isclib 1.2's notify (the fanout exchange, routing key '') reaches the durable queue of
    an ``@on(event, mode="service")`` listener unchanged, and its broadcast twin too."""
    name = legacy_codec.content_type
    extra = ["--allow-pickle"] if name == "pickle" else []
    sent = [{"order": n} for n in range(10)]
    try:
        with (
            NodeProcess.serve(amqp_url, exchange, "modes:Orders", extra=extra) as node,
            Client(amqp_url, exchange=exchange, invoke_timeout=10) as client,
        ):
            done = run_legacy_script(
                legacy_env, "old_notifier.py", amqp_url, exchange, name, str(len(sent))
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
            if done.returncode != 0 or not lines:
                pytest.fail(
                    f"old notifier failed (exit code {done.returncode}):\n{done.stdout}\n"
                    f"{done.stderr}\n--- isc 2 node:\n{node.output}",
                    pytrace=False,
                )
            assert json.loads(lines[-1][len(RESULT_PREFIX) :]) == {"ok": True}

            # Service-mode listeners run in the node's listener pool: every notification
            # once, in no promised order (docs/delivery-modes.md).
            def by_order(items: list[dict[str, int]]) -> list[dict[str, int]]:
                return sorted(items, key=lambda item: item["order"])

            def all_handled() -> list[Any] | None:
                report: list[Any] = client.orders.report()
                return report if by_order(report[1]) == sent else None

            _pid, _handled, seen, _failures = wait_for(
                all_handled,
                timeout=10,
                message="the service-mode listener to handle every notification",
            )
            assert by_order(seen) == sent
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        for method, event in (("handle", "order.placed"), ("fail", "order.bad")):
            channel.queue_delete(listener_queue_name(exchange, "orders", method, event))
            channel.queue_delete(dead_letter_queue_name(exchange, "orders", method, event))
        connection.close()


# -- isc 2 client -> old node ----------------------------------------------------------------


def test_new_client_calls_old_node(
    client: Client, legacy_codec: AbstractCodec, amqp_url: str, exchange: str
) -> None:
    assert client.legacy.add(2, 3) == 5
    assert client.legacy.add(a=20, b=22) == 42
    assert client.invoke("legacy", "add", "x", "y") == "xy"

    with pytest.raises(RemoteException) as raised:
        client.legacy.raise_error()
    assert str(raised.value) == "testing"
    assert raised.value.remote_type is None  # isclib 1.x sends no type

    with pytest.raises(RemoteException, match=r"^Could not find method no_such_method\.$"):
        client.legacy.no_such_method()
    with pytest.raises(RemoteException, match="not allowed to call unexposed method"):
        client.legacy.private_method()
    with pytest.raises(RemoteException, match="argument"):
        client.legacy.add(1)

    # isclib 1.x replies ["", null] for an exception without a message; isc 2 reads a falsy
    # error slot as success, exactly as isclib 1.x clients do.
    assert client.legacy.raise_empty() is None

    inspected = client.invoke("legacy", "_inspect")
    assert set(inspected["exposed"]) >= {"add", "echo", "raise_error", "get_received"}
    assert inspected["listeners"] == {"record": ["boom"]}

    if legacy_codec.content_type in ("typedjson", "pickle"):
        sent = typed_values()
        args, kwargs = client.legacy.echo(*sent, stamp=sent[0])
        assert list(args) == sent
        assert kwargs == {"stamp": sent[0]}
        assert [type(v) for v in args] == [datetime, datetime, UUID, bytes]

    assert client.legacy.add(40, 2) == 42  # still serving after all the errors

    # The asyncio client, on a connection of its own, speaks the same wire.
    async def awaited() -> None:
        async with AsyncClient(amqp_url, exchange=exchange, codec=legacy_codec) as aio:
            assert await aio.legacy.add(2, 3) == 5
            sums = await asyncio.gather(*(aio.legacy.add(a=i, b=1) for i in range(20)))
            assert sums == [i + 1 for i in range(20)]
            with pytest.raises(RemoteException, match=r"^testing$"):
                await aio.legacy.raise_error()
            assert await aio.legacy.raise_empty() is None
            if legacy_codec.content_type in ("typedjson", "pickle"):
                args, _kwargs = await aio.legacy.echo(*typed_values())
                assert list(args) == typed_values()

    asyncio.run(awaited())


def test_new_client_notifies_old_node(
    client: Client, legacy_codec: AbstractCodec, old_node: NodeProcess
) -> None:
    assert client.legacy.get_received() == []  # the node is up and the client connected
    payload: dict[str, Any] = {"user": "alice", "text": "Hello!", "n": [1, 2]}
    if legacy_codec.content_type in ("typedjson", "pickle"):
        payload["at"] = typed_values()[1]
        payload["id"] = typed_values()[2]

    # One argument: the isclib 1.x form [event, data]; the old listener gets `data`.
    client.notify("boom", payload)
    received = wait_for(
        lambda: client.legacy.get_received(), timeout=10, message="the old listener's record"
    )
    assert received == [payload]

    # Two arguments (or keyword arguments): [event, args, kwargs], which isclib 1.x cannot
    # unpack. It logs the error and drops the notification; no listener is called with the
    # wrong arguments.
    client.notify("boom", "alice", "Hello!")
    client.notify("boom", user="alice")
    wait_for(
        lambda: old_node.output.count("too many values to unpack") == 2,
        timeout=10,
        message="the old node to log two unpack errors",
    )
    assert client.legacy.add(1, 1) == 2  # the old node survived and still answers
    assert client.legacy.get_received() == [payload]
    assert "Traceback" not in old_node.output
