"""check_broker_url: the one place a broker URL is checked (Client, Node, the isc command)."""

from __future__ import annotations

import pytest

from isc.core import (
    ConfigurationError,
    check_broker_url,
    check_broker_urls,
    join_broker_urls,
    redact_url,
    split_broker_urls,
)


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


class TestSeveralUrls:
    """Several brokers (a cluster's members): a list, or one comma-separated string."""

    def test_a_comma_separated_string_is_split_and_each_url_checked(self) -> None:
        assert check_broker_urls("amqp://a:5672/, amqps://u:p@b:5671/vh") == (
            "amqp://a:5672/",
            "amqps://u:p@b:5671/vh",
        )

    def test_a_list_is_taken_as_given(self) -> None:
        urls = ["amqp://a/", "amqp://b/", "amqp://c/"]
        assert check_broker_urls(urls) == tuple(urls)
        assert check_broker_urls(tuple(urls)) == tuple(urls)

    def test_one_url_is_a_list_of_one(self) -> None:
        assert check_broker_urls("amqp://guest:guest@127.0.0.1:5672/") == (
            "amqp://guest:guest@127.0.0.1:5672/",
        )

    def test_a_comma_in_a_password_does_not_split_the_url(self) -> None:
        url = "amqp://user:pa,ss@host:5672/"
        assert split_broker_urls(url) == [url]
        assert check_broker_urls(f"{url},amqp://other/") == (url, "amqp://other/")

    @pytest.mark.parametrize(
        ("urls", "says"),
        [
            ("amqp://a/,http://b/", "scheme 'http://'"),
            (["amqp://a/", "localhost"], "no scheme"),
            ([], "no broker URL"),
            (["amqp://a/", 5], "must be a string"),
            (42, "string or a list"),
        ],
    )
    def test_any_bad_url_fails_the_whole_list(self, urls: object, says: str) -> None:
        with pytest.raises(ConfigurationError, match=says):
            check_broker_urls(urls)

    def test_each_password_is_masked_in_a_list(self) -> None:
        shown = redact_url("amqp://u:secret1@a/,amqp://v:secret2@b/")
        assert shown == "amqp://u:***@a/,amqp://v:***@b/"
        with pytest.raises(ConfigurationError) as caught:
            check_broker_urls("amqp://u:secret1@a/,amqp://v:secret2@b:x/")
        assert "secret" not in str(caught.value)

    def test_join_is_the_inverse_of_split(self) -> None:
        urls = ["amqp://a/", "amqp://u:p,q@b/"]
        assert split_broker_urls(join_broker_urls(urls)) == urls
