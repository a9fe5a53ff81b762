"""Broker URLs checked in one place (Client, the isc command), and a refused login (no broker)."""

from __future__ import annotations

import logging

import pika.exceptions
import pytest

from isc.client import AccessRefusedError, Client, cli
from isc.client._calls import CallTable, PendingCall
from isc.client._connection import AmqpWorker, access_refused
from isc.client._future import FutureResult
from isc.client.testing.memory import MemoryBroker
from isc.core import ConfigurationError, JSONCodec

URL = "amqp://guest:guest@127.0.0.1:1/"


class TestClientUrls:
    def test_url_is_accepted_as_well_as_host(self) -> None:
        assert Client(url=URL)._url == URL
        assert Client(URL)._url == URL
        assert Client(host=URL)._url == URL

    def test_host_and_url_together_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="not both"):
            Client(host=URL, url=URL)

    @pytest.mark.parametrize("url", ["127.0.0.1", "localhost:5672", "http://127.0.0.1:15672/"])
    def test_a_malformed_url_fails_at_construction(self, url: str) -> None:
        with pytest.raises(ConfigurationError, match="expected amqp://user:password@host"):
            Client(url)

    def test_a_password_with_reserved_characters_never_shows(self) -> None:
        with pytest.raises(ConfigurationError, match="percent-encode") as caught:
            Client("amqp://admin:pa#ss/w?rd@broker:5672/")
        assert "pa#ss" not in str(caught.value)
        assert "w?rd" not in str(caught.value)
        client = Client("amqp://admin:pa%23ss%2Fw%3Frd@broker:5672/")
        assert "pa%23" not in repr(client)
        assert "admin:***@broker:5672" in repr(client)

    def test_several_urls_are_accepted_as_a_list_or_comma_separated(self) -> None:
        second = "amqp://guest:guest@127.0.0.1:2/"
        assert Client([URL, second])._url == f"{URL},{second}"
        assert Client(url=f"{URL}, {second}")._url == f"{URL},{second}"
        with pytest.raises(ConfigurationError, match="no scheme"):
            Client([URL, "localhost:5672"])

    def test_another_transport_takes_its_own_urls(self) -> None:
        broker = MemoryBroker()
        assert Client("memory://x", transport=broker.transport)._url == "memory://x"


class TestCliUrls:
    @pytest.mark.parametrize(
        ("url", "says"),
        [
            ("127.0.0.1", "no scheme"),
            ("localhost:5672", "no scheme"),
            ("http://127.0.0.1:15672/", "scheme 'http://'"),
        ],
    )
    def test_a_malformed_url_is_one_usage_error(
        self, url: str, says: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert cli.main(["ping", "--url", url]) == cli.EXIT_USAGE
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1, err
        assert err.startswith("error: --url: invalid broker URL")
        assert says in err
        assert "amqp://" in err
        assert "amqps://" in err

    def test_isc_url_is_named_when_it_is_the_culprit(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ISC_URL", "amqp://admin:top#secret@broker/")
        assert cli.main(["call", "calc.add"]) == cli.EXIT_USAGE
        err = capsys.readouterr().err
        assert err.startswith("error: $ISC_URL: invalid broker URL")
        assert "top#secret" not in err
        assert "secret" not in err

    def test_several_urls_come_from_isc_url_or_url(self) -> None:
        env = {"ISC_URL": "amqp://a:5672/,amqp://b:5672/"}
        assert cli.resolve_settings(None, None, env).url == "amqp://a:5672/,amqp://b:5672/"
        assert cli.resolve_settings("amqp://c/, amqp://d/", None, env).url == "amqp://c/,amqp://d/"
        with pytest.raises(ConfigurationError, match=r"^\$ISC_URL: invalid broker URL"):
            cli.resolve_settings(None, None, {"ISC_URL": "amqp://a/,localhost"})

    def test_isc_run_checks_the_url_too(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main(["run", "calc:Calc", "--url", "127.0.0.1"]) == cli.EXIT_USAGE
        assert "invalid broker URL" in capsys.readouterr().err

    def test_queue_type_is_an_isc_run_option(self) -> None:
        args = cli.build_parser().parse_args(["run", "m:C"])
        assert args.queue_type == "auto"
        args = cli.build_parser().parse_args(["run", "m:C", "--queue-type", "durable"])
        assert args.queue_type == "durable"


class TestRefusedLogin:
    @pytest.mark.parametrize(
        "error",
        [
            pika.exceptions.ProbableAuthenticationError("ConnectionClosedByBroker: (403) ..."),
            pika.exceptions.ProbableAccessDeniedError("(530) NOT_ALLOWED - access to vhost"),
            pika.exceptions.AuthenticationError("PLAIN"),
            pika.exceptions.ConnectionClosedByBroker(403, "ACCESS_REFUSED - Login was refused"),
        ],
    )
    def test_refusals_are_recognised(self, error: BaseException) -> None:
        refused = access_refused(error, "amqp://u:hunter2@host/")
        assert isinstance(refused, AccessRefusedError)
        assert "check the credentials" in str(refused)
        assert "hunter2" not in str(refused)

    @pytest.mark.parametrize(
        "error",
        [
            pika.exceptions.StreamLostError("reset"),
            pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED"),
            ConnectionRefusedError(111, "refused"),
        ],
    )
    def test_other_failures_are_retried(self, error: BaseException) -> None:
        assert access_refused(error, URL) is None

    def test_the_worker_gives_up_in_one_line(self, caplog: pytest.LogCaptureFixture) -> None:
        refusals: list[AccessRefusedError] = []
        worker = AmqpWorker(
            URL,
            "isc",
            connect_timeout=1,
            reconnect_timeout=1,
            setup=lambda channel, ready: None,
            on_return=lambda method, properties: None,
            on_disconnect=lambda exc: None,
            on_refused=refusals.append,
        )
        caplog.set_level(logging.DEBUG, logger="isc")
        error = pika.exceptions.ProbableAuthenticationError("(403) ACCESS_REFUSED")
        worker._on_connection_error(None, error)
        assert len(refusals) == 1
        assert worker.refused is refusals[0]
        records = [r for r in caplog.records if r.name.startswith("isc")]
        assert [r.levelname for r in records] == ["ERROR"], [r.getMessage() for r in records]
        assert "reconnect" not in records[0].getMessage()
        with pytest.raises(AccessRefusedError, match="check the credentials"):
            worker.submit(object())  # type: ignore[arg-type]
        worker._ioloop.close()

    def test_a_failed_attempt_is_one_line_with_its_backoff(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        worker = AmqpWorker(
            URL,
            "isc",
            connect_timeout=1,
            reconnect_timeout=1,
            setup=lambda channel, ready: None,
            on_return=lambda method, properties: None,
            on_disconnect=lambda exc: None,
        )
        caplog.set_level(logging.DEBUG, logger="isc")
        worker._on_connection_error(None, ConnectionRefusedError(111, "Connection refused"))
        records = [r for r in caplog.records if r.name.startswith("isc")]
        assert len(records) == 1, [r.getMessage() for r in records]
        assert "cannot connect" in records[0].getMessage()
        assert "reconnecting to" in records[0].getMessage()
        worker._ioloop.close()

    def test_several_urls_are_tried_in_turn_with_backoff_per_round(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        urls = [f"amqp://guest:guest@127.0.0.1:{port}/" for port in (1, 2, 3)]
        worker = AmqpWorker(
            ",".join(urls),
            "isc",
            connect_timeout=1,
            reconnect_timeout=10,
            setup=lambda channel, ready: None,
            on_return=lambda method, properties: None,
            on_disconnect=lambda exc: None,
        )
        caplog.set_level(logging.DEBUG, logger="isc")
        first = worker.url_index
        tried = []
        for _ in range(6):
            tried.append(worker.url)
            worker._on_connection_error(None, ConnectionRefusedError(111, "Connection refused"))
        # every member in turn, from where this worker started
        assert tried == [urls[(first + i) % 3] for i in range(6)]
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("isc")]
        delays = [line.rsplit(" in ", 1)[1] for line in lines]
        assert delays == ["0.1s", "0.1s", "0.1s", "0.2s", "0.2s", "0.2s"], lines
        worker._ioloop.close()

    def test_workers_of_one_process_spread_over_the_urls(self) -> None:
        urls = ",".join(f"amqp://127.0.0.1:{port}/" for port in (1, 2, 3))
        workers = [
            AmqpWorker(
                urls,
                "isc",
                connect_timeout=1,
                reconnect_timeout=1,
                setup=lambda channel, ready: None,
                on_return=lambda method, properties: None,
                on_disconnect=lambda exc: None,
            )
            for _ in range(3)
        ]
        assert sorted(w.url_index for w in workers) == [0, 1, 2]
        for worker in workers:
            worker._ioloop.close()

    def test_pending_calls_fail_at_once(self) -> None:
        table = CallTable(URL, "isc", max_message_size=None, max_pending=10)
        future = FutureResult("calc.add", correlation_id="c1")
        table.add("c1", PendingCall(future, JSONCodec(), "calc.add", 5))
        table.on_refused(AccessRefusedError("the broker refused: check the credentials"))
        with pytest.raises(AccessRefusedError, match=r"calc\.add: the broker refused"):
            future.result(0)

    def test_pika_connection_logs_are_quieted(self) -> None:
        worker = AmqpWorker(  # the first worker installs the filter
            URL,
            "isc",
            connect_timeout=1,
            reconnect_timeout=1,
            setup=lambda channel, ready: None,
            on_return=lambda method, properties: None,
            on_disconnect=lambda exc: None,
        )
        workflow = logging.getLogger("pika.adapters.utils.connection_workflow")
        record = workflow.makeRecord(workflow.name, logging.ERROR, "f", 1, "failed", (), None)
        assert not workflow.filter(record)
        record.levelno = logging.CRITICAL
        assert workflow.filter(record)
        worker._ioloop.close()
