# app.py
import os

from isc.client import Client, RemoteException
from isc.codecs import get_codec

client = Client(
    host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
)
if os.environ.get("ISC_CODEC"):
    client.set_codec(get_codec(os.environ["ISC_CODEC"]))

some_user_id = 1  # Andrew, in superapp/models.py

try:
    client.messages.send_message("Hello!", some_user_id)
except RemoteException as e:
    print(f"Failed to send message, error was: {e}")
    raise SystemExit(1) from e
else:
    print("Message send!")
