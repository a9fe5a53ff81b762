"""The worker's connection writes a batch of frames as one buffer (no broker)."""

from __future__ import annotations

import pika.adapters.base_connection
import pytest

from isc.client._connection import _BatchingConnection


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What reaches pika's transport, one entry per write."""
    out: list[bytes] = []
    monkeypatch.setattr(
        pika.adapters.base_connection.BaseConnection,
        "_adapter_emit_data",
        lambda self, data: out.append(data),
    )
    return out


def test_pika_still_has_the_single_exit_for_outgoing_bytes() -> None:
    assert callable(pika.adapters.base_connection.BaseConnection._adapter_emit_data)


def test_frames_of_a_batch_go_out_as_one_buffer(written: list[bytes]) -> None:
    connection = _BatchingConnection.__new__(_BatchingConnection)  # no socket needed
    connection.start_batch()
    for frame in (b"method", b"header", b"body", b"ack"):
        connection._adapter_emit_data(frame)
    assert written == []
    connection.end_batch()
    assert written == [b"methodheaderbodyack"]


def test_frames_outside_a_batch_go_out_at_once(written: list[bytes]) -> None:
    connection = _BatchingConnection.__new__(_BatchingConnection)
    connection._adapter_emit_data(b"heartbeat")
    connection.start_batch()
    connection.end_batch()  # an empty batch writes nothing
    assert written == [b"heartbeat"]
