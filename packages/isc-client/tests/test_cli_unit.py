"""The ``isc`` command without a broker: parsing, argument conversion, settings, errors."""

from __future__ import annotations

import sys

import pytest

from isc.client import cli
from isc.core import DEFAULT_EXCHANGE, DEFAULT_URL

# A port nothing listens on: these tests never reach a broker.
NOWHERE = "amqp://someone:s3cr3t-pw@127.0.0.1:1/"


class TestParsing:
    def test_call(self) -> None:
        args = cli.build_parser().parse_args(
            ["call", "calc.add", "1", "2", "--kwargs", '{"wait": 0}', "--timeout", "5"]
        )
        assert args.command == "call"
        assert args.target == ("calc", "add")
        assert args.args == ["1", "2"]
        assert args.kwargs == {"wait": 0}
        assert args.timeout == 5.0
        assert args.codec == cli.DEFAULT_CODEC

    def test_call_defaults(self) -> None:
        args = cli.build_parser().parse_args(["call", "calc.pid"])
        assert args.args == []
        assert args.kwargs == {}
        assert args.timeout == cli.DEFAULT_CALL_TIMEOUT
        assert args.url is None
        assert args.exchange is None

    def test_service_names_may_contain_dots(self) -> None:
        args = cli.build_parser().parse_args(["call", "a.b.method"])
        assert args.target == ("a.b", "method")

    def test_negative_number_is_an_argument(self) -> None:
        args = cli.build_parser().parse_args(["call", "calc.add", "-1", "2"])
        assert args.args == ["-1", "2"]

    @pytest.mark.parametrize("target", ["calc", "calc.", ".add"])
    def test_bad_target(self, target: str, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exc_info:
            cli.main(["call", target])
        assert exc_info.value.code == 2
        assert "SERVICE.METHOD" in capsys.readouterr().err

    @pytest.mark.parametrize("kwargs", ["[1, 2]", "{nope", "3"])
    def test_bad_kwargs(self, kwargs: str, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exc_info:
            cli.main(["call", "calc.add", "--kwargs", kwargs])
        assert exc_info.value.code == 2
        assert "--kwargs" in capsys.readouterr().err

    @pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
    def test_bad_timeout(self, timeout: str) -> None:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["call", "calc.add", "--timeout", timeout])

    def test_unknown_codec(self) -> None:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["ping", "--codec", "yaml"])

    def test_notify(self) -> None:
        args = cli.build_parser().parse_args(["notify", "boom", "1", "x", "--kwargs", '{"a": 1}'])
        assert (args.command, args.event, args.args, args.kwargs) == (
            "notify",
            "boom",
            ["1", "x"],
            {"a": 1},
        )

    def test_inspect_and_ping(self) -> None:
        assert cli.build_parser().parse_args(["inspect", "calc"]).service == "calc"
        assert cli.build_parser().parse_args(["ping"]).command == "ping"

    def test_run(self) -> None:
        args = cli.build_parser().parse_args(
            ["run", "calc:Calc", "other:Svc", "--pool", "3", "--allow-pickle"]
        )
        assert args.services == ["calc:Calc", "other:Svc"]
        assert args.pool == 3
        assert args.allow_pickle is True

    def test_run_defaults(self) -> None:
        args = cli.build_parser().parse_args(["run", "calc:Calc"])
        assert args.pool == 8
        assert args.allow_pickle is False

    def test_run_needs_a_service(self) -> None:
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["run"])

    def test_a_command_is_required(self) -> None:
        with pytest.raises(SystemExit):
            cli.main([])

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exc_info:
            cli.main(["--version"])
        assert exc_info.value.code == 0
        assert capsys.readouterr().out.strip() == f"isc {cli.__version__}"

    @pytest.mark.parametrize("command", ["call", "notify"])
    def test_arg_is_optional_in_usage_errors(
        self, command: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit):
            cli.main([command])
        err = capsys.readouterr().err
        assert "[ARG ...]" in err
        assert "the following arguments are required: " in err
        assert "ARG" not in err.split("required: ", 1)[1]

    def test_inspect_takes_a_timeout(self) -> None:
        args = cli.build_parser().parse_args(["inspect", "calc.add", "--timeout", "2"])
        assert (args.service, args.timeout) == ("calc.add", 2.0)

    @pytest.mark.parametrize("command", [["call", "calc.add"], ["notify", "boom"]])
    @pytest.mark.parametrize("text", ['{"a": 1', "[1, 2", " {nope}"])
    def test_malformed_json_is_a_usage_error(
        self, command: list[str], text: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code = cli.main([*command, "1", text, "--url", NOWHERE])  # fails before connecting
        assert code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: argument {text!r} starts like a JSON object or array")
        assert "cannot connect" not in err


class TestParseValue:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("1", 1),
            ("-2.5", -2.5),
            ("true", True),
            ("null", None),
            ('"1"', "1"),
            ("[1, 2]", [1, 2]),
            ('{"a": [1]}', {"a": [1]}),
        ],
    )
    def test_json(self, text: str, value: object) -> None:
        assert cli.parse_value(text) == value

    @pytest.mark.parametrize("text", ["hello", "two words", "", "1 2", "x{", '"open'])
    def test_plain_strings(self, text: str) -> None:
        assert cli.parse_value(text) == text

    @pytest.mark.parametrize("text", ["{not json", "[1,", " [", "{}x"])
    def test_malformed_objects_and_arrays_are_errors(self, text: str) -> None:
        with pytest.raises(ValueError, match="starts like a JSON object or array"):
            cli.parse_value(text)


class TestSettings:
    def test_defaults(self) -> None:
        assert cli.resolve_settings(None, None, {}) == (DEFAULT_URL, DEFAULT_EXCHANGE)

    def test_environment_over_defaults(self) -> None:
        env = {"ISC_URL": "amqp://u:p@env-host/", "ISC_EXCHANGE": "env_x"}
        assert cli.resolve_settings(None, None, env) == ("amqp://u:p@env-host/", "env_x")

    def test_flags_over_environment(self) -> None:
        env = {"ISC_URL": "amqp://u:p@env-host/", "ISC_EXCHANGE": "env_x"}
        settings = cli.resolve_settings("amqp://flag-host/", "flag_x", env)
        assert settings == cli.Settings("amqp://flag-host/", "flag_x")

    def test_each_setting_on_its_own(self) -> None:
        env = {"ISC_URL": "amqp://env-host/"}
        assert cli.resolve_settings(None, "flag_x", env) == ("amqp://env-host/", "flag_x")

    def test_empty_values_count_as_unset(self) -> None:
        env = {"ISC_URL": " ", "ISC_EXCHANGE": ""}
        assert cli.resolve_settings("", None, env) == (DEFAULT_URL, DEFAULT_EXCHANGE)

    def test_process_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ISC_URL", "amqp://from-env/")
        monkeypatch.delenv("ISC_EXCHANGE", raising=False)
        assert cli.resolve_settings(None, None) == ("amqp://from-env/", DEFAULT_EXCHANGE)


class TestBrokerDown:
    @pytest.mark.parametrize(
        "argv",
        [
            ["ping"],
            ["call", "calc.add", "1", "2"],
            ["notify", "boom"],
            ["inspect", "calc"],
        ],
    )
    def test_one_line_without_the_password(
        self, argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        code = cli.main([*argv, "--url", NOWHERE, "--connect-timeout", "0.5"])
        out, err = capsys.readouterr()
        assert code == 1
        assert out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert "s3cr3t-pw" not in err
        assert "amqp://someone:***@127.0.0.1:1/" in err
        assert "is RabbitMQ running?" in err
        assert "ISC_URL" in err

    def test_url_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ISC_URL", NOWHERE)
        assert cli.main(["ping", "--connect-timeout", "0.5"]) == 1
        err = capsys.readouterr().err
        assert "127.0.0.1:1" in err
        assert "s3cr3t-pw" not in err

    def test_help_shows_no_password(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit):
            cli.main(["call", "--help"])
        assert "guest:guest" not in capsys.readouterr().out


def test_run_without_isc_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``isc run`` says what to install when isc-server is missing (and imports no gevent)."""
    # A None entry in sys.modules makes the import fail, as if isc-server were not installed.
    monkeypatch.setitem(sys.modules, "isc.server", None)
    assert cli.main(["run", "calc:Calc"]) == 1
    out, err = capsys.readouterr()
    assert err.strip() == "isc run needs isc-server: pip install isc-server"
    assert out == ""


class TestInspectOutput:
    BOUNDS = (0.001, 0.01, 0.1, 1.0)

    def test_quantiles_interpolate_inside_the_bucket(self) -> None:
        # 10 values in (0.001, 0.01], 10 in (0.01, 0.1]
        buckets = [0, 10, 10, 0, 0]
        assert cli.estimate_quantile(self.BOUNDS, buckets, 0.5) == pytest.approx(0.01)
        assert cli.estimate_quantile(self.BOUNDS, buckets, 0.25) == pytest.approx(0.0055)
        assert cli.estimate_quantile(self.BOUNDS, buckets, 0.99) == pytest.approx(0.0982)
        assert cli.estimate_quantile(self.BOUNDS, [4, 0, 0, 0, 0], 0.5) == pytest.approx(0.0005)
        # never above the largest value seen
        assert cli.estimate_quantile(self.BOUNDS, [4, 0, 0, 0, 0], 0.5, 0.0001) == 0.0001

    def test_quantiles_beyond_the_last_bound_and_of_nothing(self) -> None:
        assert cli.estimate_quantile(self.BOUNDS, [1, 0, 0, 0, 9], 0.5) == float("inf")
        assert cli.estimate_quantile(self.BOUNDS, [1, 0, 0, 0, 9], 0.5, largest=4.0) == 4.0
        assert cli.estimate_quantile(self.BOUNDS, [0, 0, 0, 0, 0], 0.5) is None

    def described(self) -> dict[str, object]:
        stats = {
            "calls": 4,
            "errors": 1,
            "refused": 2,
            "seconds": 0.02,
            "max": 0.009,
            "buckets": [0, 4, 0, 0, 0],
        }
        # a node without "max" (the estimate is then not capped)
        old = {"calls": 1, "errors": 0, "refused": 0, "seconds": 2.0, "buckets": [0, 0, 0, 0, 1]}
        return {
            "exposed": {"add": "(a, b)", "pid": "()"},
            "listeners": {"record": ["bang", "boom"]},
            "metrics": {
                "since": 1_800_000_000.0,
                "uptime": 3725.0,
                "node": {"host": "box", "pid": 42},
                "buckets": list(self.BOUNDS),
                "methods": {
                    "add": stats,
                    "slow": {
                        "calls": 1,
                        "errors": 0,
                        "refused": 0,
                        "seconds": 7.0,
                        "max": 7.0,
                        "buckets": [0, 0, 0, 0, 1],
                    },
                    "old": old,
                },
                "listeners": {"record": {**stats, "refused": 0}},
                "timers": {},
                "unknown_methods": 3,
                "dropped": {"bad_requests": 5, "expired_requests": 0},
            },
        }

    def test_the_table(self) -> None:
        text = cli.format_inspection("calc", self.described())
        lines = text.splitlines()
        assert lines[:6] == [
            "service calc",
            "  exposed methods:",
            "    add(a, b)",
            "    pid()",
            "  listeners:",
            "    record: bang, boom",
        ]
        title = "metrics of the node that answered (box, pid 42) over 1h 2m:"
        table = lines[lines.index(title) + 1 :]
        header = ["kind", "handler", "calls", "errors", "refused", "mean", "p50", "p99", "max"]
        assert table[0].split() == header
        assert table[1].split() == ["method", "add", "4", "1", "2", "5ms", "5.5ms", "9ms", "9ms"]
        assert table[2].split() == ["method", "old", "1", "0", "0", "2s", ">1s", ">1s", "-"]
        assert table[3].split() == ["method", "slow", "1", "0", "0", "7s", "7s", "7s", "7s"]
        assert table[4].split()[:5] == ["listener", "record", "4", "1", "0"]
        assert len({len(line) for line in table[:2]}) == 1  # aligned columns
        assert "  calls of unknown or private methods: 3" in lines
        assert "  dropped or unanswerable messages (whole node): bad_requests 5" in lines

    def test_listener_modes_and_timer_scopes(self) -> None:
        described = {
            **self.described(),
            "listeners": {"record": ["bang", "boom"], "once": ["paid"]},
            "listener_modes": {
                "record": {"bang": "broadcast", "boom": "broadcast"},
                "once": {"paid": "service"},
            },
            "timers": {
                "sweep": [{"timeout": 0.5, "scope": "cluster"}],
                "tick": [{"timeout": 5.0, "scope": "local"}],
            },
        }
        lines = cli.format_inspection("calc", described).splitlines()
        assert lines[4:10] == [
            "  listeners:",
            "    once: paid (service)",
            "    record: bang, boom",
            "  timers:",
            "    sweep: every 0.5s (cluster)",
            "    tick: every 5s (local)",
        ]

    def test_an_idle_service_and_an_old_node(self) -> None:
        described = self.described()
        metrics = described["metrics"]
        assert isinstance(metrics, dict)
        metrics.update(methods={}, listeners={})
        assert "  nothing handled yet" in cli.format_inspection("calc", described).splitlines()
        legacy = cli.format_inspection("legacy", {"exposed": {}, "listeners": {}})
        assert legacy.splitlines()[1:3] == ["  exposed methods: none", "  listeners: none"]
        assert "no metrics" in legacy

    def test_json_flag(self) -> None:
        assert cli.build_parser().parse_args(["inspect", "calc", "--json"]).json is True
        assert cli.build_parser().parse_args(["inspect", "calc"]).json is False


class TestReports:
    def test_a_pickle_refusal_names_isc_run_allow_pickle(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from isc.core import RemoteException

        old_node = RemoteException(
            "the pickle codec is refused by default", "isc.core.errors.CodecNotAllowedError"
        )
        assert cli._report(old_node) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: isc.core.errors.CodecNotAllowedError: the pickle codec")
        assert err.rstrip().endswith("(the node must run with isc run --allow-pickle)")

    def test_one_method_of_an_inspection(self) -> None:
        described = {
            "exposed": {"add": "(a, b)", "sub": "(a, b)"},
            "listeners": {"on_x": ["x"]},
            "metrics": {"methods": {"add": {"calls": 1}, "sub": {"calls": 2}}, "uptime": 3},
        }
        narrowed = cli._one_method("calc", "add", described)
        assert narrowed["exposed"] == {"add": "(a, b)"}
        assert narrowed["listeners"] == {}
        assert narrowed["metrics"]["methods"] == {"add": {"calls": 1}}
        assert narrowed["metrics"]["uptime"] == 3
        expected = r"exposes no method 'mul' \(it has: add, on_x, sub\)"
        with pytest.raises(cli._CliError, match=expected):
            cli._one_method("calc", "mul", described)
