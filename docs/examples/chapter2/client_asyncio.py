#!/usr/bin/env python3
# client_asyncio.py: chapter 2's client, as an asyncio program
import asyncio
import os

from isc.client import RemoteException, TimeoutException
from isc.client.aio import AsyncClient
from isc.codecs import get_codec


async def main():
    client = AsyncClient(
        host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        exchange=os.environ.get("ISC_EXCHANGE", "isctest"),
    )
    if os.environ.get("ISC_CODEC"):
        client.set_codec(get_codec(os.environ["ISC_CODEC"]))
    async with client:
        await client.wait_connected(10)

        await client.notify("boom", dict(foo="bar", via="asyncio"))

        assert await client.example.add(2, 3) == "5" * 8000
        assert await client.invoke("example", "add", 2, 3) == "5" * 8000

        # Two calls at once: gather them.
        first, second = await asyncio.gather(
            client.example.add(1, 1), client.example.add.call_async(2, 2)
        )
        assert (first, second) == ("2" * 8000, "4" * 8000)

        for call in (
            client.example.add(2, "3"),
            client.example.raise_error(),
            client.example.private_method(),
            client.example.unexisting_method(),
        ):
            try:
                await call
            except RemoteException:
                pass
            else:
                raise AssertionError

        try:
            await client.example.slow_method.with_timeout(1)()
        except TimeoutException:
            pass
        else:
            raise AssertionError


asyncio.run(main())
