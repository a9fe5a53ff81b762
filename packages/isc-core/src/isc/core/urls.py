"""Broker URLs: defaults, the one check every entry point applies, and a redacted form.

``Client``, ``Node`` and the ``isc`` command all pass a broker URL through
:func:`check_broker_url` before using it, so a mistyped URL fails the same way everywhere:
one :class:`~isc.core.errors.ConfigurationError` line naming the expected form, never a
password. :func:`redact_url` masks the password of any URL, even one that does not parse.

Where a RabbitMQ cluster serves, several URLs may be given (one per member): a list, or one
string with the URLs separated by commas (``ISC_URL``, ``--url``). :func:`check_broker_urls`
splits and checks them; a comma inside a password does not split it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_URL",
    "URL_SCHEMES",
    "URL_FORM",
    "check_broker_url",
    "check_broker_urls",
    "join_broker_urls",
    "redact_url",
    "split_broker_urls",
]

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


#: A piece of a comma-separated list that starts a new URL: it begins with ``scheme://``.
_URL_START = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://")


def split_broker_urls(text: str) -> list[str]:
    """The URLs of a comma-separated list, e.g. ``ISC_URL="amqp://a/,amqp://b/"``.

    A comma inside a URL's user information (``user:pa,ss@host``) does not split it; any other
    comma does. Surrounding whitespace is dropped. No URL is checked here.
    """
    urls: list[str] = []
    for piece in text.split(","):
        in_password = urls and "@" not in urls[-1] and "@" in piece
        if in_password and not _URL_START.match(piece):
            urls[-1] += "," + piece  # a comma inside the previous URL's user information
        else:
            urls.append(piece)
    return [url.strip() for url in urls]


def join_broker_urls(urls: Sequence[str]) -> str:
    """The comma-separated form of ``urls`` (what ``ISC_URL`` and ``--url`` take)."""
    return ",".join(urls)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs and error messages.

    Works on any text: a URL that does not parse (say, a password with an unencoded ``#``)
    still has everything between ``user:`` and the last ``@`` masked. A comma-separated list
    of URLs has each one's password masked.
    """
    if "," in url:
        urls = split_broker_urls(url)
        if len(urls) > 1:
            return ",".join(_redact_one(one) for one in urls)
    return _redact_one(url)


def _redact_one(url: str) -> str:
    """:func:`redact_url` of a single URL."""
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


def check_broker_urls(urls: object) -> tuple[str, ...]:
    """The broker URLs in ``urls``, each passed through :func:`check_broker_url`.

    ``urls`` is one URL, a comma-separated list of URLs (``"amqp://a/,amqp://b/"``), or a
    list or tuple of them (the members of a RabbitMQ cluster). Raises
    :class:`~isc.core.errors.ConfigurationError` for an empty list or any bad URL (naming it,
    its password masked).
    """
    if isinstance(urls, str):
        pieces = split_broker_urls(urls) if urls.strip() else [urls]
    elif isinstance(urls, (list, tuple)):
        pieces = []
        for url in urls:
            if not isinstance(url, str):
                raise ConfigurationError(
                    f"a broker URL must be a string, got {type(url).__name__}; expected {URL_FORM}"
                )
            pieces.extend(split_broker_urls(url) if url.strip() else [url])
    else:
        raise ConfigurationError(
            f"the broker URL must be a string or a list of strings, got {type(urls).__name__}; "
            f"expected {URL_FORM}"
        )
    if not pieces:
        raise ConfigurationError(f"no broker URL given; expected {URL_FORM}")
    return tuple(check_broker_url(url) for url in pieces)


def _scrub(text: str, url: str) -> str:
    """``text`` without the password of ``url`` (a parser's message might quote it)."""
    parts = _split_userinfo(url)
    if parts is not None and ":" in parts[1]:
        password = parts[1].partition(":")[2]
        if password:
            text = text.replace(password, "***")
    return text
