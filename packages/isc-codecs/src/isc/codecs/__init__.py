"""The isc codecs: how message payloads are encoded on the wire.

``AbstractCodec``, ``PickleCodec``, ``JSONCodec`` and ``TypedJSONCodec`` are the documented
isclib names (defined in :mod:`isc.core`, re-exported here). ``MsgpackCodec`` needs the
``isc-codecs[msgpack]`` extra. Write your own codec by subclassing :class:`AbstractCodec`,
giving it a unique ``content_type`` and implementing ``encode`` and ``decode``; both sides of
a call must have it installed.
"""

from __future__ import annotations

from isc.core.codecs import (
    AbstractCodec,
    CodecRegistry,
    JSONCodec,
    PickleCodec,
    TypedJSONCodec,
)
from isc.core.errors import (
    CodecException,
    CodecNotAllowedError,
    DecodeError,
    EncodeError,
    UnknownCodecError,
)

from ._msgpack import MsgpackCodec
from ._version import __version__

__all__ = [
    "__version__",
    "AbstractCodec",
    "CodecRegistry",
    "JSONCodec",
    "PickleCodec",
    "TypedJSONCodec",
    "MsgpackCodec",
    "CodecException",
    "CodecNotAllowedError",
    "DecodeError",
    "EncodeError",
    "UnknownCodecError",
    "CODECS",
    "get_codec",
    "text_type",
    "binary_type",
]

#: isclib 1.x module constants.
text_type = str
binary_type = bytes

#: Every codec class isc ships, by content type.
CODECS: dict[str, type[AbstractCodec]] = {
    codec.content_type: codec for codec in (PickleCodec, JSONCodec, TypedJSONCodec, MsgpackCodec)
}


def get_codec(name: str) -> AbstractCodec:
    """A new codec instance for the content type ``name`` (``pickle``, ``json``, ...).

    Raises :class:`UnknownCodecError` for an unknown name, and :class:`CodecException` when
    the codec's optional dependency is missing (e.g. ``pip install isc-codecs[msgpack]``).
    """
    try:
        codec_class = CODECS[name]
    except KeyError:
        raise UnknownCodecError(
            f"unknown codec {name!r}; isc ships {', '.join(sorted(CODECS))}"
        ) from None
    return codec_class()
