"""Broker URLs: defaults and a redacted form that is safe to log."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["DEFAULT_URL", "redact_url"]

#: The broker isc connects to when no URL is given (isclib 1.x's default).
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparsable broker URL>"
