"""The asyncio peers' servers for ``benchmarks/aio.py``: aio-pika's RPC pattern and FastStream.

    python benchmarks/aio_peers.py aio-pika URL
    python benchmarks/aio_peers.py faststream URL

Each serves ``add(a, b) -> a + b`` the way its library documents an RPC server: aio-pika's
``patterns.RPC`` registers ``add``; FastStream's ``RabbitBroker`` subscribes a handler to the
queue ``FASTSTREAM_QUEUE`` and returns the sum (its reply goes to the request's
``reply_to``). Prints ``aio-peer-ready`` once serving; SIGTERM stops it. The client halves
are in ``aio.py``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

READY_LINE = "aio-peer-ready"
#: aio-pika's RPC method name, and FastStream's queue.
AIO_PIKA_METHOD = "add"
FASTSTREAM_QUEUE = "faststream-bench-add"


async def serve_aio_pika(url: str, stop: asyncio.Event) -> None:
    """aio-pika's RPC pattern: ``RPC.register("add", add)``."""
    import aio_pika
    from aio_pika.patterns import RPC

    async def add(a: Any, b: Any) -> Any:
        return a + b

    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        rpc = await RPC.create(channel)
        await rpc.register(AIO_PIKA_METHOD, add, auto_delete=True)
        print(READY_LINE, flush=True)
        await stop.wait()


async def serve_faststream(url: str, stop: asyncio.Event) -> None:
    """FastStream: a subscriber whose return value is the reply."""
    from faststream.rabbit import RabbitBroker

    broker = RabbitBroker(url, log_level=30)

    @broker.subscriber(FASTSTREAM_QUEUE)  # type: ignore[untyped-decorator]
    async def add(message: dict[str, Any]) -> Any:
        return message["a"] + message["b"]

    async with broker:
        await broker.start()
        print(READY_LINE, flush=True)
        await stop.wait()


async def main() -> None:
    """Serve the peer named on the command line until SIGTERM."""
    which, url = sys.argv[1], sys.argv[2]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if which == "aio-pika":
        await serve_aio_pika(url, stop)
    elif which == "faststream":
        await serve_faststream(url, stop)
    else:
        raise SystemExit(f"unknown peer {which!r}: aio-pika or faststream")


if __name__ == "__main__":
    asyncio.run(main())
