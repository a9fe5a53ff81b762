"""check_broker_url: the one place a broker URL is checked (Client, Node, the isc command)."""

from __future__ import annotations

import pytest

from isc.core import ConfigurationError, check_broker_url


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:5672/",
        "AMQP://guest:guest@localhost/",
        "amqps://u:p%23%2F%3F%40@broker.example:5671/vh?heartbeat=5",
        "amqp://[::1]:5672/%2F",
        "amqp://broker",
    ],
)
def test_amqp_urls_are_accepted_as_given(url: str) -> None:
    assert check_broker_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("127.0.0.1", "no scheme"),
        ("localhost:5672", "no scheme"),
        ("http://guest:guest@127.0.0.1:15672/", "scheme 'http://'"),
        ("amqp://guest:guest@host:notaport/", "Port could not be cast"),
        ("amqp://guest:guest@host:99999/", "out of range"),
        ("amqp:///vhost", "no host"),
        ("", "empty"),
    ],
)
def test_other_urls_fail_with_one_line_naming_the_expected_form(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_broker_url(url)
    message = str(caught.value)
    assert reason in message
    assert "amqp://user:password@host:5672/vhost (or amqps:// for TLS)" in message
    assert "\n" not in message


@pytest.mark.parametrize("password", ["pa#ss", "pa/ss", "pa?ss", "a#b/c?d"])
def test_an_unencoded_password_is_refused_and_never_shown(password: str) -> None:
    url = f"amqp://admin:{password}@broker.example:5672/"
    with pytest.raises(ConfigurationError, match="percent-encode") as caught:
        check_broker_url(url)
    assert password not in str(caught.value)
    assert "amqp://admin:***@broker.example:5672/" in str(caught.value)


def test_a_password_is_not_shown_when_the_port_is_wrong() -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_broker_url("amqp://admin:hunter2@broker:port/")
    assert "hunter2" not in str(caught.value)


def test_a_non_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a string"):
        check_broker_url(None)
