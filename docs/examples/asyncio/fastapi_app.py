# fastapi_app.py: a FastAPI app calling the isc service `users` (chapter 3's users_service.py)
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from isc.client import TimeoutException
from isc.client.aio import AsyncClient

# One client per process, shared by every request; it connects when the app starts.
isc = AsyncClient(
    os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
)


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with isc:  # start() now, stop() when the app shuts down
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/users/{user_id}")
async def get_user(user_id: int) -> dict:
    try:
        # Awaited: the event loop serves other requests while this one waits for its reply.
        name = await isc.users.get_user.with_timeout(2)(user_id)
    except TimeoutException:
        raise HTTPException(504, "the users service did not answer") from None
    if name is None:
        raise HTTPException(404, f"no user {user_id}")
    return {"id": user_id, "name": name}
