#!/usr/bin/env python3
import os
import time

from isc.client import Client, RemoteException, TimeoutException
from isc.codecs import get_codec

client = Client(
    host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=os.environ.get("ISC_EXCHANGE", "isctest"),
)
if os.environ.get("ISC_CODEC"):
    client.set_codec(get_codec(os.environ["ISC_CODEC"]))
client.start()

time.sleep(2)

client.notify("boom", dict(foo="bar"))

assert client.example.add(2, 3) == "5" * 8000
assert client.invoke("example", "add", 2, 3) == "5" * 8000

try:
    client.example.add(2, "3")
except RemoteException:
    pass
else:
    raise AssertionError

try:
    client.example.raise_error()
except RemoteException:
    pass
else:
    raise AssertionError

try:
    client.example.private_method()
except RemoteException:
    pass
else:
    raise AssertionError

try:
    client.example.unexisting_method()
except RemoteException:
    pass
else:
    raise AssertionError

try:
    client.set_invoke_timeout(1)
    client.example.slow_method()
except TimeoutException:
    pass
else:
    raise AssertionError

client.stop()
