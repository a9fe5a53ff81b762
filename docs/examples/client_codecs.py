"""Choosing a client's codec, as shown in docs/codecs.md.

Executed by packages/isc-codecs/tests/test_docs_codecs.py. Creating a ``Client`` does not
connect (the first call does), so this runs without a broker.
"""

from isc.client import Client
from isc.codecs import MsgpackCodec, TypedJSONCodec, get_codec

client = Client(codec=MsgpackCodec())  # every call and notification of this client
assert client.codec.content_type == "msgpack"

client.set_codec(get_codec("json"))  # from now on, by content type
client.force_json()  # the same, as in isclib 1.x
assert client.codec.content_type == "json"

client.set_codec(TypedJSONCodec)  # a codec class is accepted too
assert isinstance(client.codec, TypedJSONCodec)

client.stop()
