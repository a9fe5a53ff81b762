"""The isc error hierarchy, shared by every distribution.

Every error isc raises derives from :class:`IscError`::

    IscError  (alias: IPCException, the isclib 1.x name)
    ├── RemoteException          the remote side reported a failure
    │   └── ServiceNotFoundError nobody consumes the service's queue (AMQP 312 NO_ROUTE)
    │       └── NoNodeConsumingError  its queue exists, but no node consumes it
    ├── LocalException           the failure happened in this process
    │   ├── TimeoutException     no reply within the invoke timeout
    │   ├── ConnectionLostError  the broker connection is gone and the reply cannot arrive
    │   ├── AccessRefusedError   the broker refused the credentials (AMQP 403): no retry
    │   ├── ClientClosedError    the client was stopped
    │   ├── BufferFullError      too many notifications wait for the broker
    │   │   └── TooManyPendingCallsError  too many calls wait for their replies
    │   └── WrongThreadError     a blocking call made where its reply could never be read
    ├── CodecException           a payload could not be encoded or decoded
    │   ├── EncodeError          the value cannot be written by this codec
    │   ├── DecodeError          the payload is not valid for this codec
    │   │   └── MalformedMessageError  valid codec payload, wrong message shape
    │   ├── UnknownCodecError    no codec with that content type is known
    │   ├── CodecNotAllowedError the codec is known but not accepted (e.g. pickle)
    │   └── MessageTooLargeError a message is over the ``max_message_size`` limit
    └── ConfigurationError       an invalid setting or registration
"""

from __future__ import annotations

__all__ = [
    "IscError",
    "IPCException",
    "RemoteException",
    "ServiceNotFoundError",
    "NoNodeConsumingError",
    "LocalException",
    "TimeoutException",
    "ConnectionLostError",
    "AccessRefusedError",
    "ClientClosedError",
    "BufferFullError",
    "TooManyPendingCallsError",
    "WrongThreadError",
    "CodecException",
    "EncodeError",
    "DecodeError",
    "MalformedMessageError",
    "UnknownCodecError",
    "CodecNotAllowedError",
    "MessageTooLargeError",
    "ConfigurationError",
]


class IscError(Exception):
    """Root of every error raised by isc."""


#: The isclib 1.x name of the root error, kept so ``except IPCException`` keeps working.
IPCException = IscError


class RemoteException(IscError):
    """The remote service failed: it raised, or the method was missing, private or misused.

    ``str(exc)`` is the remote message (as in isclib 1.x). ``remote_type`` names the remote
    exception's type when the remote peer sent it (isc 2 peers do; isclib 1.x peers do not).
    When the error crossed several services (a handler let a ``RemoteException`` from another
    service propagate), ``remote_type`` is still the original type, and ``remote_chain``
    names the ``service.method`` calls it came through, the one that raised it first:
    ``("inventory.reserve", "orders.place")``. It is empty when the peer did not send it.
    """

    def __init__(
        self,
        message: str = "",
        remote_type: str | None = None,
        remote_chain: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.remote_type = remote_type
        self.remote_chain = tuple(remote_chain)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        chain = f", remote_chain={self.remote_chain!r}" if self.remote_chain else ""
        return f"{type(self).__name__}({self.message!r}, remote_type={self.remote_type!r}{chain})"

    def __reduce__(
        self,
    ) -> tuple[type[RemoteException], tuple[str, str | None, tuple[str, ...]]]:
        return (type(self), (self.message, self.remote_type, self.remote_chain))


class ServiceNotFoundError(RemoteException):
    """The request could not be routed: no node consumes the service's queue."""


class NoNodeConsumingError(ServiceNotFoundError):
    """The service's queue exists but no node is consuming it (its nodes all stopped): a call
    that got no reply within about a second found the queue without consumers and failed
    rather than wait for its whole timeout. The request stays in the queue until its timeout
    passes; a node that starts consuming before then still runs it (its reply is dropped)."""


class LocalException(IscError):
    """A failure on this side of the wire (timeouts, lost connections, local decoding)."""


class TimeoutException(LocalException):
    """No reply arrived within the invoke timeout."""


class ConnectionLostError(LocalException):
    """The broker connection dropped, so a pending reply can no longer arrive."""


class AccessRefusedError(LocalException):
    """The broker refused to let this connection in: a wrong user name or password, or no
    access to the vhost (AMQP 403 ACCESS_REFUSED, or a refused login).

    Retrying cannot help, so isc does not: the client fails its calls at once and a node
    stops. Check the credentials in the broker URL (``--url`` / ``ISC_URL``).
    """


class ClientClosedError(LocalException):
    """The client was stopped while the call was pending, or a call was made after ``stop()``."""


class BufferFullError(LocalException):
    """``notify()`` refused a notification: too many are already waiting for the broker.

    Notifications wait in a bounded buffer while the connection is down, so a long outage
    cannot exhaust memory; the limit is the client's ``max_buffered_notifications``.
    """


class TooManyPendingCallsError(BufferFullError):
    """A call was refused: the client already has ``max_pending_calls`` calls waiting.

    Each pending call holds memory until its reply, its timeout or a disconnect ends it, so
    a service that stopped answering cannot make a busy caller grow without bound.
    """


class WrongThreadError(LocalException):
    """A blocking call was made on the client's own I/O thread, which reads the replies:
    it could never return. Use ``call_async`` there, or call from another thread."""


class CodecException(IscError):
    """A payload could not be encoded or decoded (the isclib 1.x ``isc.codecs.CodecException``)."""


class EncodeError(CodecException):
    """A value cannot be represented by the chosen codec."""


class DecodeError(CodecException):
    """A payload is not valid for its codec."""


class MalformedMessageError(DecodeError):
    """A payload decoded, but it does not have the shape of the expected message type."""


class UnknownCodecError(CodecException):
    """No codec is registered for a content type."""


class CodecNotAllowedError(CodecException):
    """The codec exists but this peer does not accept it (pickle is refused by default)."""


class MessageTooLargeError(CodecException):
    """A message is larger than the ``max_message_size`` of the client or node handling it."""


class ConfigurationError(IscError):
    """An invalid setting, argument or registration."""
