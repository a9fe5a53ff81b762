from isc.client import Client, RemoteException, TimeoutException

with Client() as client:  # the broker on 127.0.0.1, the exchange "isc"
    print(client.example.add(2, 3))

    client.notify("boom", {"foo": "bar"})

    try:
        client.example.raise_error()
    except RemoteException as exc:
        print(f"raise_error failed: {exc.remote_type}: {exc}")

    try:
        client.example.private_method()
    except RemoteException as exc:
        print(f"private_method refused: {exc.remote_type}: {exc}")

    try:
        client.call("example", "slow_method", timeout=1)
    except TimeoutException:
        print("slow_method did not answer within 1 s")
