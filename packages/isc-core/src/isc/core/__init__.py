"""isc-core: the isc wire protocol, broker naming, the error hierarchy and the codec contract.

Pure Python, no third-party dependencies, no sockets and no threads: the client and the server
build on it, and other implementations can read ``docs/protocol.md`` beside it.
"""

from ._version import __version__
from .codecs import (
    OBJECT_TYPE_KEY,
    OBJECT_VALUE_KEY,
    PICKLE_PROTOCOL,
    AbstractCodec,
    CodecRegistry,
    JSONCodec,
    PickleCodec,
    TypedJSONCodec,
    describe_payload,
)
from .errors import (
    AccessRefusedError,
    BufferFullError,
    ClientClosedError,
    CodecException,
    CodecNotAllowedError,
    ConfigurationError,
    ConnectionLostError,
    DecodeError,
    EncodeError,
    IPCException,
    IscError,
    LocalException,
    MalformedMessageError,
    MessageTooLargeError,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
    TooManyPendingCallsError,
    UnknownCodecError,
    WrongThreadError,
)
from .naming import (
    DEFAULT_EXCHANGE,
    MAX_NAME_BYTES,
    broadcast_queue_name,
    fanout_exchange_name,
    new_correlation_id,
    reply_queue_name,
    service_queue_name,
    service_routing_key,
    validate_exchange_name,
    validate_service_name,
)
from .protocol import (
    PROTOCOL_VERSION,
    Envelope,
    Headers,
    Notification,
    Reply,
    Request,
    exception_type_name,
)
from .urls import DEFAULT_URL, URL_FORM, URL_SCHEMES, check_broker_url, redact_url

__all__ = [
    "__version__",
    # protocol
    "PROTOCOL_VERSION",
    "Envelope",
    "Headers",
    "Notification",
    "Reply",
    "Request",
    "exception_type_name",
    # naming
    "DEFAULT_EXCHANGE",
    "MAX_NAME_BYTES",
    "broadcast_queue_name",
    "fanout_exchange_name",
    "new_correlation_id",
    "reply_queue_name",
    "service_queue_name",
    "service_routing_key",
    "validate_exchange_name",
    "validate_service_name",
    # urls
    "DEFAULT_URL",
    "URL_FORM",
    "URL_SCHEMES",
    "check_broker_url",
    "redact_url",
    # codecs
    "OBJECT_TYPE_KEY",
    "OBJECT_VALUE_KEY",
    "PICKLE_PROTOCOL",
    "AbstractCodec",
    "CodecRegistry",
    "JSONCodec",
    "PickleCodec",
    "TypedJSONCodec",
    "describe_payload",
    # errors
    "AccessRefusedError",
    "BufferFullError",
    "TooManyPendingCallsError",
    "WrongThreadError",
    "ClientClosedError",
    "CodecException",
    "CodecNotAllowedError",
    "ConfigurationError",
    "ConnectionLostError",
    "DecodeError",
    "EncodeError",
    "IPCException",
    "IscError",
    "LocalException",
    "MalformedMessageError",
    "MessageTooLargeError",
    "RemoteException",
    "ServiceNotFoundError",
    "TimeoutException",
    "UnknownCodecError",
]
