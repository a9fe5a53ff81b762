"""isc-client: call isc services and broadcast events over RabbitMQ.

Depends only on pika (never on gevent), so it works in any Python process: a web app, a
script, or a gevent-based isc node.

>>> client = Client("amqp://guest:guest@127.0.0.1:5672/")   # doctest: +SKIP
>>> client.users.get_user(1)                                  # doctest: +SKIP
"""

from isc.core.codecs import AbstractCodec, JSONCodec, PickleCodec, TypedJSONCodec
from isc.core.errors import (
    AccessRefusedError,
    BufferFullError,
    ClientClosedError,
    CodecException,
    ConnectionLostError,
    IPCException,
    IscError,
    LocalException,
    MessageTooLargeError,
    NoNodeConsumingError,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
    TooManyPendingCallsError,
    WrongThreadError,
)

from ._client import Client, MethodProxy, ServiceProxy
from ._future import FutureResult
from ._version import __version__

__all__ = [
    "__version__",
    "Client",
    "FutureResult",
    "MethodProxy",
    "ServiceProxy",
    "AbstractCodec",
    "JSONCodec",
    "PickleCodec",
    "TypedJSONCodec",
    "AccessRefusedError",
    "BufferFullError",
    "TooManyPendingCallsError",
    "WrongThreadError",
    "ClientClosedError",
    "CodecException",
    "ConnectionLostError",
    "IPCException",
    "IscError",
    "LocalException",
    "MessageTooLargeError",
    "RemoteException",
    "ServiceNotFoundError",
    "NoNodeConsumingError",
    "TimeoutException",
]
