"""isc-client: call isc services and broadcast events over RabbitMQ.

Depends only on pika (never on gevent), so it works in any Python process: a web app, a
script, or a gevent-based isc node. The ``Client`` arrives with the client/server work;
this release carries the error types callers catch.
"""

from isc.core.errors import (
    ClientClosedError,
    ConnectionLostError,
    IPCException,
    IscError,
    LocalException,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
)

from ._version import __version__

__all__ = [
    "__version__",
    "ClientClosedError",
    "ConnectionLostError",
    "IPCException",
    "IscError",
    "LocalException",
    "RemoteException",
    "ServiceNotFoundError",
    "TimeoutException",
]
