import os

from isc.client import Client, RemoteException

# ISC_URL and ISC_EXCHANGE let the test suite point the client at its own broker.
client = Client(
    os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
    invoke_timeout=20,
)
print(client.users.get_user(1))  # wait for the result
print(client.invoke("users", "get_user", 2))  # the same
future = client.users.get_user.call_async(1)  # a concurrent.futures.Future
print(future.result())
print(client.users.get_user.with_timeout(2)(2))  # this call waits at most 2 s
print(client.call("users", "get_user", (3,), timeout=2))  # explicit arguments
client.notify("new_message", "alice", "Hello!")  # to every node listening
try:
    client.users.get_user(1, 2)
except RemoteException as exc:
    print(f"{exc.remote_type}: {exc}")
client.stop()
