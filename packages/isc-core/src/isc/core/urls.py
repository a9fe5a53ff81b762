"""Broker URLs: defaults, the one check every entry point applies, and a redacted form.

``Client``, ``Node`` and the ``isc`` command all pass a broker URL through
:func:`check_broker_url` before using it, so a mistyped URL fails the same way everywhere:
one :class:`~isc.core.errors.ConfigurationError` line naming the expected form, never a
password. :func:`redact_url` masks the password of any URL, even one that does not parse.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = ["DEFAULT_URL", "URL_SCHEMES", "URL_FORM", "check_broker_url", "redact_url"]

#: The broker isc connects to when no URL is given (isclib 1.x's default).
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"

#: The URL schemes isc connects with: plain AMQP and AMQP over TLS.
URL_SCHEMES = ("amqp", "amqps")

#: The form of a broker URL, as error messages show it.
URL_FORM = "amqp://user:password@host:5672/vhost (or amqps:// for TLS)"


def _split_userinfo(url: str) -> tuple[str, str, str] | None:
    """``(scheme://, userinfo, rest)`` of ``url``, or None when it has no ``user@`` part.

    The user information runs from after ``://`` to the *last* ``@``, so that a password
    with an unencoded ``@``, ``/``, ``?`` or ``#`` (which ``urlsplit`` would cut elsewhere)
    is still recognised as one.
    """
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo, _, after = rest.rpartition("@")
    return head + sep, userinfo, after


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs and error messages.

    Works on any text: a URL that does not parse (say, a password with an unencoded ``#``)
    still has everything between ``user:`` and the last ``@`` masked.
    """
    parts = _split_userinfo(url)
    if parts is None:
        return url
    head, userinfo, rest = parts
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return url
    return f"{head}{user}:***@{rest}"


def check_broker_url(url: object) -> str:
    """Return ``url`` if it is a usable broker URL, else raise ``ConfigurationError``.

    Accepted: ``amqp://`` or ``amqps://`` with a host, an optional ``user:password@`` (whose
    reserved characters ``@ : / ? #`` are percent-encoded, e.g. ``%23`` for ``#``), an
    optional numeric port, vhost and query (pika's connection options). The message names
    the expected form and shows the URL with its password masked, never the password.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"the broker URL is empty or not a string; expected {URL_FORM}")
    shown = redact_url(url)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in URL_SCHEMES:
        got = f"scheme {scheme + '://'!r}" if scheme else "no scheme"
        raise ConfigurationError(f"invalid broker URL {shown!r}: {got}; expected {URL_FORM}")
    parts = _split_userinfo(url)
    if parts is not None and any(c in parts[1] for c in "/?#"):
        raise ConfigurationError(
            f"invalid broker URL {shown!r}: the user name or password contains an unencoded "
            "'/', '?' or '#'; percent-encode them (%2F, %3F, %23; '@' is %40, ':' is %3A), "
            f"expected {URL_FORM}"
        )
    try:
        split = urlsplit(url)
        host = split.hostname
        split.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigurationError(
            f"invalid broker URL {shown!r}: {_scrub(str(exc), url)}; expected {URL_FORM}"
        ) from None
    if not host:
        raise ConfigurationError(f"invalid broker URL {shown!r}: no host; expected {URL_FORM}")
    return url


def _scrub(text: str, url: str) -> str:
    """``text`` without the password of ``url`` (a parser's message might quote it)."""
    parts = _split_userinfo(url)
    if parts is not None and ":" in parts[1]:
        password = parts[1].partition(":")[2]
        if password:
            text = text.replace(password, "***")
    return text
