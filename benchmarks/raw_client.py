"""The raw-pika RPC baseline client: ``BlockingConnection`` and direct reply-to, no isc.

With ``reply="exclusive"`` it receives replies on an exclusive, auto-deleted queue of its own
instead (what isc's client does, because isclib 1.x nodes can only reach such a queue): the
bench compares the two reply paths with everything else equal.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pika
import pika.spec

REPLY_TO = "amq.rabbitmq.reply-to"


class RawClient:
    """Calls the raw server's queue; replies arrive on ``amq.rabbitmq.reply-to`` (``direct``)
    or on an exclusive queue of the client's (``exclusive``)."""

    def __init__(self, url: str, queue: str, reply: str = "direct") -> None:
        if reply not in ("direct", "exclusive"):
            raise ValueError(f"reply must be 'direct' or 'exclusive', got {reply!r}")
        self.queue = queue
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self._next_id = 0
        self._replies: dict[str, bytes] = {}
        if reply == "direct":
            self.reply_to = REPLY_TO
        else:
            declared = self.channel.queue_declare("", exclusive=True, auto_delete=True)
            self.reply_to = declared.method.queue
        self.channel.basic_consume(self.reply_to, self._on_reply, auto_ack=True)

    def _on_reply(
        self, _ch: Any, _method: Any, properties: pika.spec.BasicProperties, body: bytes
    ) -> None:
        self._replies[properties.correlation_id] = body

    def send(self, a: Any, b: Any) -> str:
        """Publish one request; return its correlation id."""
        self._next_id += 1
        cid = str(self._next_id)
        self.channel.basic_publish(
            "",
            self.queue,
            json.dumps({"a": a, "b": b}).encode(),
            pika.BasicProperties(
                reply_to=self.reply_to, correlation_id=cid, content_type="application/json"
            ),
        )
        return cid

    def call(self, a: Any, b: Any) -> Any:
        """One blocking call: publish, then wait for its reply."""
        cid = self.send(a, b)
        while cid not in self._replies:
            self.connection.process_data_events(time_limit=None)
        return json.loads(self._replies.pop(cid))

    def pipelined(self, in_flight: int, duration: float) -> tuple[int, float]:
        """Keep ``in_flight`` calls outstanding for ``duration`` s; return (calls, seconds)."""
        outstanding = {self.send(i, 1) for i in range(in_flight)}
        done = 0
        started = time.perf_counter()
        stop_at = started + duration
        while outstanding:
            self.connection.process_data_events(time_limit=None)
            for cid in [c for c in self._replies if c in outstanding]:
                json.loads(self._replies.pop(cid))
                outstanding.discard(cid)
                done += 1
                if time.perf_counter() < stop_at:
                    outstanding.add(self.send(done, 1))
        return done, time.perf_counter() - started

    def close(self) -> None:
        """Close the connection."""
        if self.connection.is_open:
            self.connection.close()
