"""A minimal isc service written with plain pika and isc.core: a reference peer for tests.

It speaks the wire protocol exactly as documented (declares the isclib 1.x topology, decodes
requests with the request's codec, replies to ``{exchange}`` with routing key ``reply_to``)
without any isc runtime, so client tests do not depend on the server package.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.channel
import pika.spec

from isc.client.internal import received_envelope
from isc.codecs import CODECS
from isc.core import (
    CodecRegistry,
    Reply,
    Request,
    fanout_exchange_name,
    service_queue_name,
)

__all__ = ["RawService", "calculator_methods"]

Method = Callable[..., Any]


def calculator_methods() -> dict[str, Method]:
    """The methods the tests call: echo, add, fail, sleep."""

    def echo(*args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    def add(a: Any, b: Any) -> Any:
        return a + b

    def fail(message: str = "testing") -> None:
        raise ValueError(message)

    def sleep(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    return {"echo": echo, "add": add, "fail": fail, "sleep": sleep}


class RawService:
    """Serve ``methods`` as service ``name`` from a background thread (one call at a time)."""

    def __init__(
        self, url: str, exchange: str, name: str, methods: dict[str, Method] | None = None
    ) -> None:
        self.url = url
        self.exchange = exchange
        self.name = name
        self.methods = methods if methods is not None else calculator_methods()
        self.codecs = CodecRegistry([cls() for cls in CODECS.values()], allow_pickle=True)
        self.requests: list[Request] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"raw-{name}", daemon=True)

    def __enter__(self) -> RawService:
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            raise RuntimeError(f"raw service {self.name} did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.url))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        try:
            channel = connection.channel()
            channel.exchange_declare(self.exchange, "direct", durable=False, auto_delete=False)
            channel.exchange_declare(
                fanout_exchange_name(self.exchange), "fanout", durable=False, auto_delete=False
            )
            queue = service_queue_name(self.exchange, self.name)
            channel.queue_declare(queue, auto_delete=True)  # auto-delete: tests leave nothing
            channel.queue_bind(queue, self.exchange, routing_key=queue)
            channel.basic_qos(prefetch_count=10)
            channel.basic_consume(queue, self._on_request)
            self._ready.set()
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.1)
        finally:
            if connection.is_open:
                connection.close()

    def _on_request(
        self,
        channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        codec = self.codecs.get(properties.content_type)
        envelope = received_envelope(properties, body)
        request = Request.decode(envelope, codec)
        self.requests.append(request)
        try:
            result = self.methods[request.method](*request.args, **request.kwargs)
            reply = Reply.success(request.correlation_id, result)
        except Exception as exc:
            reply = Reply.from_exception(request.correlation_id, exc)
        out = reply.encode(codec)
        channel.basic_publish(
            self.exchange,
            properties.reply_to,
            out.body,
            pika.BasicProperties(
                content_type=out.content_type,
                content_encoding=out.content_encoding,
                correlation_id=out.correlation_id,
                headers=dict(out.headers),
            ),
        )
        channel.basic_ack(method.delivery_tag)
