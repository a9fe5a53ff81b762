# messages_service.py
import os

from superapp.models import Message

from isc.client import Client
from isc.codecs import get_codec
from isc.server import Node, expose

client = Client(
    host=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
)
if os.environ.get("ISC_CODEC"):
    client.set_codec(get_codec(os.environ["ISC_CODEC"]))


class MessageService:
    name = "messages"

    @expose
    def send_message(self, body, receipt):
        user = client.users.get_user(receipt)
        if not user:
            # User not found!
            raise Exception("Cannot send message: user not found")
        Message.objects.create(receipt=receipt, message=body)

        # Broadcast to all instances
        client.notify("new_message", user["username"], body)


# ISC_URL, ISC_EXCHANGE and ISC_CODEC let the test suite pick the broker, an exchange of its
# own and the codec (the pickle codec must be allowed explicitly). Unset: the defaults.
node = Node(
    url=os.environ.get("ISC_URL"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
    allow_pickle=os.environ.get("ISC_CODEC") == "pickle",
)
node.register_service(MessageService())

try:
    node.run()
except KeyboardInterrupt:
    node.stop()
