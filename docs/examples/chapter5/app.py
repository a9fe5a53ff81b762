# app.py
import os
from time import sleep

from isc.client import Client
from isc.codecs import get_codec

# Two periods of the service's timer (ISC_TICK, 5 seconds unless set): 10 seconds.
WAIT = 2 * float(os.environ.get("ISC_TICK", 5))

client = Client(
    host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
)
if os.environ.get("ISC_CODEC"):
    client.set_codec(get_codec(os.environ["ISC_CODEC"]))

client.ticker.reset_ticks()
print(client.ticker.get_ticks())  # prints 0

sleep(WAIT)
print(client.ticker.get_ticks())  # prints 2

sleep(WAIT)
print(client.ticker.get_ticks())  # prints 4

client.ticker.reset_ticks()
print(client.ticker.get_ticks())  # prints 0

sleep(WAIT)
print(client.ticker.get_ticks())  # prints 2
