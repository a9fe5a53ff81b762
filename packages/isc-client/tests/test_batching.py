"""The worker's connection writes a batch of frames as one buffer, straight to the socket when
nothing is queued, and reads until a short read (no broker)."""

from __future__ import annotations

import socket

import pika.adapters.base_connection
import pika.frame
import pika.spec
import pytest

from isc.client._fastpath import (
    _AsyncPlaintextTransport,
    _BatchingConnection,
    _direct_socket,
    _PlaintextTransport,
)


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


def test_frames_pika_sends_itself_join_the_batch(written: list[bytes]) -> None:
    """pika writes its own frames (heartbeats, channel methods) through the one exit the
    connection overrides, so they are batched with isc's publishes and acks."""
    connection = _BatchingConnection.__new__(_BatchingConnection)
    connection.connection_state = connection.CONNECTION_OPEN
    connection.bytes_sent = connection.frames_sent = 0
    heartbeat = pika.frame.Heartbeat().marshal()
    close_ok = pika.frame.Method(1, pika.spec.Channel.CloseOk()).marshal()
    connection.start_batch()
    connection._send_frame(pika.frame.Heartbeat())
    connection._send_frame(pika.frame.Method(1, pika.spec.Channel.CloseOk()))
    assert written == []
    connection.end_batch()
    assert written == [heartbeat + close_ok]
    assert (connection.frames_sent, connection.bytes_sent) == (2, len(heartbeat + close_ok))


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


class _Plain(_AsyncPlaintextTransport):  # type: ignore[misc,valid-type]
    """A stand-in with only what the direct write looks at (it is not the exact class)."""


def plain_transport(sock: socket.socket, queued: int = 0) -> object:
    transport = _AsyncPlaintextTransport.__new__(_AsyncPlaintextTransport)
    transport._sock = sock
    transport._state = transport._STATE_ACTIVE
    transport._tx_buffered_byte_count = queued
    return transport


def test_pika_still_has_the_transport_the_direct_write_relies_on() -> None:
    assert _AsyncPlaintextTransport is not None
    with socket.socket() as sock:
        transport = plain_transport(sock)
        assert transport.get_write_buffer_size() == 0  # type: ignore[attr-defined]
        assert _direct_socket(transport) is sock


def test_a_frame_goes_straight_to_the_socket_when_nothing_is_queued(
    written: list[bytes],
) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setblocking(False)
        connection = _BatchingConnection.__new__(_BatchingConnection)
        connection._transport = plain_transport(ours)
        connection._adapter_emit_data(b"frame")
        assert peer.recv(100) == b"frame"
        assert written == []  # pika's transport was not involved


def test_what_the_socket_does_not_take_is_left_to_the_transport(written: list[bytes]) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setblocking(False)
        connection = _BatchingConnection.__new__(_BatchingConnection)
        connection._transport = plain_transport(ours)
        data = b"x" * (8 * 1024 * 1024)  # more than a socket buffer holds
        connection._adapter_emit_data(data)
        assert len(written) == 1
        assert 0 < len(written[0]) < len(data)
        assert data.endswith(written[0])


def test_queued_data_keeps_its_place(written: list[bytes]) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        connection = _BatchingConnection.__new__(_BatchingConnection)
        connection._transport = plain_transport(ours, queued=10)
        connection._adapter_emit_data(b"later")
        assert written == [b"later"]


def test_tls_and_unknown_transports_are_written_by_pika() -> None:
    assert _direct_socket(object()) is None
    assert _direct_socket(None) is None
    assert _direct_socket(_Plain.__new__(_Plain)) is None


class Protocol:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.received.append(data)


def test_the_connection_reads_through_its_own_plaintext_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[object] = []
    monkeypatch.setattr(
        pika.adapters.base_connection.BaseConnection,
        "_proto_connection_made",
        lambda self, transport: made.append(transport),
    )
    with socket.socket() as sock:
        transport = plain_transport(sock)
        connection = _BatchingConnection.__new__(_BatchingConnection)
        connection._proto_connection_made(transport)
        assert made == [transport]
        assert type(transport) is _PlaintextTransport


@pytest.mark.parametrize("size", [10, 65536 + 10, 3 * 65536])
def test_a_read_ends_at_a_short_read_not_at_would_block(size: int) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setblocking(False)
        peer.sendall(b"x" * size)
        transport = plain_transport(ours)
        transport.__class__ = _PlaintextTransport
        protocol = Protocol()
        transport._protocol = protocol  # type: ignore[attr-defined]
        transport._consume()  # type: ignore[attr-defined]  # pika's would raise BlockingIOError
        got = b"".join(protocol.received)
        # up to pika's per-event limit (100 KiB, then the loop comes back), all that was sent
        assert len(got) == min(size, 65536 * 2)
        assert all(len(chunk) == 65536 for chunk in protocol.received[:-1])
