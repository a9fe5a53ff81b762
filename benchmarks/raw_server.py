"""The raw-pika RPC baseline server: plain pika, no isc.

    python benchmarks/raw_server.py URL QUEUE [EXCHANGE]

One ``BlockingConnection``, a non-durable queue, prefetch 100, manual ack. Each request body is
JSON ``{"a": ..., "b": ...}``; the reply (JSON ``a + b``) goes to the request's ``reply_to``
(direct reply-to) with its ``correlation_id``. Prints ``raw-server-ready`` once consuming;
SIGTERM stops it.

With ``EXCHANGE`` (``benchmarks/features.py``), replies go out as an isc node sends them:
through that exchange, with a content encoding and a headers table.
"""

from __future__ import annotations

import json
import signal
import sys
from types import FrameType
from typing import Any

import pika
import pika.channel
import pika.spec

READY_LINE = "raw-server-ready"
PREFETCH = 100


def main() -> None:
    """Serve ``QUEUE`` on the broker at ``URL`` until SIGTERM."""
    url, queue = sys.argv[1], sys.argv[2]
    exchange = sys.argv[3] if len(sys.argv) > 3 else ""
    extra: dict[str, Any] = {}
    if exchange:
        extra = {"content_encoding": "utf-8", "headers": {"x-isc-version": 2}}
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=False, auto_delete=False)
    channel.basic_qos(prefetch_count=PREFETCH)

    def on_request(
        ch: Any,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        request = json.loads(body)
        reply = json.dumps(request["a"] + request["b"]).encode()
        ch.basic_publish(
            exchange,
            properties.reply_to,
            reply,
            pika.BasicProperties(
                correlation_id=properties.correlation_id, content_type="application/json", **extra
            ),
        )
        ch.basic_ack(method.delivery_tag)

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        connection.add_callback_threadsafe(channel.stop_consuming)

    signal.signal(signal.SIGTERM, on_term)
    channel.basic_consume(queue, on_request, auto_ack=False)
    print(READY_LINE, flush=True)
    channel.start_consuming()
    connection.close()


if __name__ == "__main__":
    main()
