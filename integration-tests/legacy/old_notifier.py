"""An isclib 1.2 client notifying ``order.placed``: runs in the isclib 1.2 virtualenv.

    python -I -u old_notifier.py URL EXCHANGE CODEC COUNT     (CODEC: json | typedjson | pickle)

Sends ``COUNT`` notifications ``order.placed`` with data ``{"order": n}`` through isclib
1.2's own ``Client.notify``, then calls ``orders.report`` (its requests leave in order after
the notifications, so once it answers they were all published) and prints one line
``RESULT <json>`` on stdout: ``{"ok": true}`` or the failure. The pytest side asserts.
"""

from __future__ import annotations

import json
import sys

from isc.client import Client
from isc.codecs import JSONCodec, PickleCodec, TypedJSONCodec

CODECS = {"json": JSONCodec, "typedjson": TypedJSONCodec, "pickle": PickleCodec}
RESULT_PREFIX = "RESULT "


def main():
    url, exchange, codec_name, count = sys.argv[1:5]
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # isclib's TypedJSONCodec print()s every tagged value
    client = Client(host=url, exchange=exchange, codec=CODECS[codec_name](), invoke_timeout=10)
    client.start()
    try:
        for n in range(int(count)):
            client.notify("order.placed", {"order": n})
        client.orders.report()
        result = {"ok": True}
    except Exception as exc:
        result = {"ok": False, "type": type(exc).__name__, "message": str(exc)}
    finally:
        client.stop()
    real_stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
