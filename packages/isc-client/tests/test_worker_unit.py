"""The I/O worker's bookkeeping without a broker: publisher confirms, replay, the bounded buffer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pika.spec
import pytest

from isc.client import BufferFullError, Client, MessageTooLargeError
from isc.client._connection import AmqpWorker, Outgoing
from isc.core import ConfigurationError, Envelope

NOWHERE = "amqp://guest:secret@127.0.0.1:1/"


class FakeChannel:
    """Records what the worker publishes, on either wire, and its publisher-confirm setup."""

    def __init__(self) -> None:
        self.published: list[bytes] = []
        self.properties: list[pika.spec.BasicProperties] = []
        self.confirm_selects = 0
        self.close_callbacks: list[Any] = []

    def add_on_close_callback(self, callback: Any) -> None:
        self.close_callbacks.append(callback)

    def confirm_delivery(self, ack_nack_callback: Any, callback: Any = None) -> None:
        self.confirm_selects += 1
        self.on_confirm = ack_nack_callback

    def publish_encoded(self, exchange: str, key: str, body: bytes, *args: Any, **kw: Any) -> None:
        self.published.append(body)  # the fast path's publish

    def basic_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.spec.BasicProperties,
        mandatory: bool = False,
    ) -> None:
        self.published.append(body)  # stock pika's publish
        self.properties.append(properties)


class Frame:
    """What pika hands to a confirm callback."""

    def __init__(self, method: object) -> None:
        self.method = method


def ack(tag: int, multiple: bool = False) -> Frame:
    return Frame(pika.spec.Basic.Ack(delivery_tag=tag, multiple=multiple))


def nack(tag: int) -> Frame:
    return Frame(pika.spec.Basic.Nack(delivery_tag=tag))


def note(n: int) -> Outgoing:
    return Outgoing(Envelope(str(n).encode(), "json"), "isc_fanout", "", confirm=True)


def make_worker(fastpath: bool, max_buffered: int = 3) -> AmqpWorker:
    """A worker that never connects, on the fast path or on stock pika."""
    return AmqpWorker(
        NOWHERE,
        "isc",
        connect_timeout=1,
        reconnect_timeout=1,
        setup=lambda channel, ready: None,
        on_return=lambda method, properties: None,
        on_disconnect=lambda exc: None,
        max_buffered=max_buffered,
        fastpath=fastpath,
    )


@pytest.fixture(params=[True, False], ids=["fastpath", "stock"])
def worker(request: pytest.FixtureRequest) -> Iterator[AmqpWorker]:
    w = make_worker(request.param)
    assert w.wire.fast is request.param
    w._channel = FakeChannel()
    w._confirm_channel = FakeChannel()
    w.ready.set()  # as if connected: _flush publishes at once
    yield w
    w._ioloop.close()


def channel(worker: AmqpWorker) -> FakeChannel:
    """The calls' channel."""
    assert isinstance(worker._channel, FakeChannel)
    return worker._channel


def confirmed(worker: AmqpWorker) -> FakeChannel:
    """The notifications' channel, in publisher-confirm mode."""
    assert isinstance(worker._confirm_channel, FakeChannel)
    return worker._confirm_channel


def test_notifications_count_until_the_broker_confirms_them(worker: AmqpWorker) -> None:
    for n in range(3):
        worker.submit(note(n))
    worker._flush()
    assert confirmed(worker).published == [b"0", b"1", b"2"]
    assert worker.buffered == 3
    worker._on_confirm(ack(2, multiple=True))
    assert worker.buffered == 1
    assert not worker.wait_confirmed(0.01)
    worker._on_confirm(ack(3))
    assert worker.buffered == 0
    assert worker.wait_confirmed(0)


def test_calls_and_notifications_go_out_on_separate_channels(worker: AmqpWorker) -> None:
    worker.submit(note(1))
    worker.submit(Outgoing(Envelope(b"call", "json"), "isc", "isc_service_x"))
    worker.submit(note(2))
    worker._flush()
    assert channel(worker).published == [b"call"]  # calls never pay for confirms
    assert confirmed(worker).published == [b"1", b"2"]
    # Tags count the confirmed channel's messages only: note 1 is tag 1, note 2 tag 2.
    worker._on_confirm(ack(1))
    assert worker.buffered == 1
    worker._on_confirm(ack(2))
    assert worker.buffered == 0


def test_the_buffer_is_bounded(worker: AmqpWorker) -> None:
    for n in range(3):
        worker.submit(note(n))
    with pytest.raises(BufferFullError, match="3 notifications are waiting") as info:
        worker.submit(note(3))
    assert "secret" not in str(info.value)
    worker._flush()
    worker._on_confirm(ack(1))
    worker.submit(note(3))  # room again


def test_unconfirmed_notifications_are_published_again_after_a_reconnect(
    worker: AmqpWorker,
) -> None:
    for n in range(3):
        worker.submit(note(n))
    worker._flush()
    worker._on_confirm(ack(1))
    worker._requeue_unconfirmed()  # the channel died
    assert [item.envelope.body for item in worker._parked] == [b"1", b"2"]
    assert worker.stats["republished"] == 2
    assert worker.buffered == 2  # still owed to the caller


def test_a_nacked_notification_is_published_again(worker: AmqpWorker) -> None:
    worker.submit(note(7))
    worker._flush()
    worker._on_confirm(nack(1))
    assert confirmed(worker).published == [b"7", b"7"]
    assert worker.stats["nacked"] == 1
    worker._on_confirm(ack(2))
    assert worker.buffered == 0


def test_a_flush_waiter_wakes_up_on_the_last_confirm(worker: AmqpWorker) -> None:
    worker.submit(note(1))
    worker._flush()
    done = threading.Event()
    waiter = threading.Thread(target=lambda: worker.wait_confirmed(10) and done.set())
    waiter.start()
    worker._on_confirm(ack(1))
    waiter.join(10)
    assert done.is_set()


def test_shutdown_counts_what_it_abandons(worker: AmqpWorker) -> None:
    worker.submit(note(1))
    worker._flush()
    worker.submit(note(2))  # still in the inbox
    worker._shutdown()
    assert worker.stats["abandoned"] == 2
    assert worker.buffered == 0


def test_requests_over_max_message_size_fail_before_connecting() -> None:
    client = Client(NOWHERE, max_message_size=100)
    with pytest.raises(MessageTooLargeError, match="over this client's max_message_size of 100"):
        client.svc.method.call_async("x" * 200)
    with pytest.raises(MessageTooLargeError, match="notification 'event' is"):
        client.notify("event", "x" * 200)
    assert client._worker is None  # nothing was started


@pytest.mark.parametrize(
    "settings",
    [{"max_message_size": 0}, {"max_message_size": "big"}, {"max_buffered_notifications": 0}],
)
def test_limits_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="must be a positive int"):
        Client(NOWHERE, **settings)


def test_connection_errors_are_reported_by_their_root_cause() -> None:
    from pika.adapters.utils.connection_workflow import (
        AMQPConnectionWorkflowFailed,
        AMQPConnectorTransportSetupError,
    )

    from isc.client._connection import root_cause

    cause = OSError("certificate verify failed")
    wrapped = AMQPConnectionWorkflowFailed([AMQPConnectorTransportSetupError(cause)])
    assert str(wrapped) == ""  # what a user would have seen
    assert root_cause(wrapped) is cause
    plain = ValueError("x")
    assert root_cause(plain) is plain


def test_a_submitting_thread_publishes_itself_while_the_loop_waits(worker: AmqpWorker) -> None:
    if not worker.wire.fast:
        pytest.skip("stock pika hands every publish to the loop")
    worker.submit(note(1))  # the loop is not running: its lock is free, as while it waits
    assert confirmed(worker).published == [b"1"]


def test_a_batch_is_left_to_the_loop(worker: AmqpWorker) -> None:
    worker.submit(note(1), batch=True)
    worker.submit(note(2), batch=True)
    assert confirmed(worker).published == []
    worker._flush()  # what the loop's next pass does
    assert confirmed(worker).published == [b"1", b"2"]


def test_a_busy_loop_publishes_on_its_next_pass(worker: AmqpWorker) -> None:
    if not worker.wire.fast:
        pytest.skip("stock pika hands every publish to the loop")
    assert worker._shared is not None
    with worker._shared.lock:  # the loop thread holds it while it works
        submitter = threading.Thread(target=worker.submit, args=(note(1),))
        submitter.start()
        submitter.join(5)
        assert confirmed(worker).published == []
    worker._flush()
    assert confirmed(worker).published == [b"1"]


def test_a_new_confirm_channel_selects_confirms_and_republishes_what_was_lost(
    worker: AmqpWorker,
) -> None:
    for n in range(2):
        worker.submit(note(n))
    worker._flush()
    fresh = FakeChannel()
    worker.ready.clear()
    worker._on_confirm_channel_open(fresh)  # type: ignore[arg-type]  # after a reconnect
    assert fresh.confirm_selects == 1
    assert fresh.on_confirm == worker._on_confirm
    assert fresh.close_callbacks == [worker._on_channel_closed]
    assert [item.envelope.body for item in worker._parked] == [b"0", b"1"]
    assert worker.stats["republished"] == 2


def test_stock_pika_gets_the_envelope_as_basic_properties() -> None:
    w = make_worker(False)
    try:
        w._channel = FakeChannel()
        w.reply_to = "response-1"
        w.ready.set()
        envelope = Envelope(b"{}", "json", correlation_id="c1", headers={"x-isc-deadline": 5})
        w.submit(Outgoing(envelope, "isc", "isc_service_x", wants_reply=True, mandatory=True))
        w._flush()
        (properties,) = w._channel.properties
        assert (properties.content_type, properties.correlation_id) == ("json", "c1")
        assert (properties.reply_to, properties.headers) == ("response-1", {"x-isc-deadline": 5})
    finally:
        w._ioloop.close()


def test_the_fast_path_is_off_when_the_environment_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from isc.client.internal import ENV_FASTPATH, fastpath_requested, select_wire

    monkeypatch.setenv(ENV_FASTPATH, "0")
    assert not fastpath_requested(None)
    assert not select_wire().fast
    assert select_wire(True).fast  # an explicit option wins
    monkeypatch.setenv(ENV_FASTPATH, "1")
    assert select_wire().fast
    assert not select_wire(False).fast
    monkeypatch.delenv(ENV_FASTPATH)
    assert select_wire().fast


def test_an_untested_pika_runs_on_stock_pika(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from isc.client import _wire

    monkeypatch.setattr(_wire.pika, "__version__", "9.0.0")
    monkeypatch.setattr(_wire, "_WARNED", set())
    assert not _wire.select_wire(True).fast
    assert not _wire.select_wire(True).fast
    assert [r.getMessage() for r in caplog.records].count(
        "pika 9.0.0 is not a release isc's fast path was tested with (1.3, 1.4): running on "
        "stock pika"
    ) == 1
