# app.py
import os

from isc.client import Client
from isc.codecs import get_codec

client = Client(
    host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
)
if os.environ.get("ISC_CODEC"):
    client.set_codec(get_codec(os.environ["ISC_CODEC"]))

print(client.users.get_user(1))  # prints 'Andrew'
print(client.users.get_user(2))  # prints 'Victoria'
print(client.users.get_user(3))  # prints 'None'
