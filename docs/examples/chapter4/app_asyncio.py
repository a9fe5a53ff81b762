# app_asyncio.py: chapter 4's app, as an asyncio program
import asyncio
import os

from isc.client import RemoteException
from isc.client.aio import AsyncClient
from isc.codecs import get_codec


async def main():
    async with AsyncClient(
        host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        exchange=os.environ.get("ISC_EXCHANGE", "isc"),
        codec=get_codec(os.environ["ISC_CODEC"]) if os.environ.get("ISC_CODEC") else None,
    ) as client:
        some_user_id = 1  # Andrew, in superapp/models.py
        try:
            await client.messages.send_message("Hello from asyncio!", some_user_id)
        except RemoteException as e:
            print(f"Failed to send message, error was: {e}")
            raise SystemExit(1) from e
        else:
            print("Message send!")


asyncio.run(main())
