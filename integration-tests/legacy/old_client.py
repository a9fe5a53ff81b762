"""An isclib 1.2 client calling service ``calc``: runs in the isclib 1.2 virtualenv.

    python -I -u old_client.py URL EXCHANGE CODEC     (CODEC: json | typedjson | pickle)

Makes a fixed list of calls with isclib 1.2's own ``isc.client.Client`` and prints one line
``RESULT <json>`` on stdout: a map from check name to ``{"ok": true, "value": ...}`` or
``{"ok": false, "type": <exception class>, "message": str(exc)}``. The pytest side asserts.
Everything else this script or isclib prints (TypedJSON prints ``Encode ...``) goes to stderr.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timedelta, timezone

from isc.client import Client
from isc.codecs import JSONCodec, PickleCodec, TypedJSONCodec

CODECS = {"json": JSONCodec, "typedjson": TypedJSONCodec, "pickle": PickleCodec}
RESULT_PREFIX = "RESULT "


def outcome(fn, *args, **kwargs):
    """Call ``fn`` and describe what happened as plain data."""
    try:
        value = fn(*args, **kwargs)
    except Exception as exc:
        return {"ok": False, "type": type(exc).__name__, "message": str(exc)}
    return {"ok": True, "value": value}


def typed_values():
    """Values only the typed codecs carry, with what they must come back as."""
    return [
        datetime(2018, 1, 24, 17, 59, 40, 123),
        datetime(2026, 11, 30, 12, 0, 5, 250000, tzinfo=timezone(timedelta(hours=2))),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\xff bytes",
    ]


def round_trip(client):
    """Echo the typed values through the remote service; compare them here."""
    sent = typed_values()
    got = outcome(client.calc.echo, *sent, stamp=sent[0])
    if not got["ok"]:
        return got
    args, kwargs = got["value"]
    returned = [*args, kwargs.get("stamp")]
    expected = [*sent, sent[0]]
    return {
        "ok": True,
        "equal": returned == expected,
        "types": [type(v).__name__ for v in returned],
        "sent": [repr(v) for v in expected],
        "returned": [repr(v) for v in returned],
    }


def main():
    url, exchange, codec_name = sys.argv[1:4]
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # isclib's TypedJSONCodec print()s every tagged value
    client = Client(host=url, exchange=exchange, codec=CODECS[codec_name](), invoke_timeout=10)
    client.start()
    try:
        results = {
            "add": outcome(client.calc.add, 2, 3),
            "add_kwargs": outcome(client.calc.add, a=20, b=22),
            "raise_error": outcome(client.calc.raise_error),
            "raise_empty": outcome(client.calc.raise_empty),
            "private_method": outcome(client.calc.private_method),
            "missing_method": outcome(client.calc.no_such_method),
            "wrong_arguments": outcome(client.calc.add, 1),
            "too_many_arguments": outcome(client.calc.add, 1, 2, 3, 4),
            "add_after_errors": outcome(client.calc.add, 40, 2),
        }
        if codec_name in ("typedjson", "pickle"):
            results["typed_round_trip"] = round_trip(client)
    finally:
        client.stop()
    real_stdout.write(RESULT_PREFIX + json.dumps(results, default=repr) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
