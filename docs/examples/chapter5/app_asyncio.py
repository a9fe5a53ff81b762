# app_asyncio.py: chapter 5's app, as an asyncio program
import asyncio
import os

from isc.client.aio import AsyncClient
from isc.codecs import get_codec

# Two periods of the service's timer (ISC_TICK, 5 seconds unless set): 10 seconds.
WAIT = 2 * float(os.environ.get("ISC_TICK", 5))


async def main():
    async with AsyncClient(
        host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        exchange=os.environ.get("ISC_EXCHANGE", "isc"),
        codec=get_codec(os.environ["ISC_CODEC"]) if os.environ.get("ISC_CODEC") else None,
    ) as client:
        await client.ticker.reset_ticks()
        print(await client.ticker.get_ticks())  # prints 0

        await asyncio.sleep(WAIT)  # the event loop keeps running other tasks meanwhile
        print(await client.ticker.get_ticks())  # prints 2

        await asyncio.sleep(WAIT)
        print(await client.ticker.get_ticks())  # prints 4

        await client.ticker.reset_ticks()
        print(await client.ticker.get_ticks())  # prints 0

        await asyncio.sleep(WAIT)
        print(await client.ticker.get_ticks())  # prints 2


asyncio.run(main())
