# app_asyncio.py: chapter 3's app, as an asyncio program
import asyncio
import os

from isc.client.aio import AsyncClient
from isc.codecs import get_codec


async def main():
    async with AsyncClient(
        host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        exchange=os.environ.get("ISC_EXCHANGE", "isc"),
        codec=get_codec(os.environ["ISC_CODEC"]) if os.environ.get("ISC_CODEC") else None,
    ) as client:
        print(await client.users.get_user(1))  # prints 'Andrew'
        # Three calls in flight at once: the results come back in the order asked.
        names = await asyncio.gather(*(client.users.get_user(i) for i in (2, 3, 1)))
        print(names)  # prints ['Victoria', None, 'Andrew']


asyncio.run(main())
