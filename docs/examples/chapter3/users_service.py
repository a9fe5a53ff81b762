# users_service.py
import os

from isc.server import Node, expose


class UserService:
    name = "users"

    @expose
    def get_user(self, id):
        if id == 1:
            return "Andrew"
        elif id == 2:
            return "Victoria"
        return None


# ISC_URL, ISC_EXCHANGE and ISC_CODEC let the test suite pick the broker, an exchange of its
# own and the codec (the pickle codec must be allowed explicitly). Unset: the defaults.
node = Node(
    url=os.environ.get("ISC_URL"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
    allow_pickle=os.environ.get("ISC_CODEC") == "pickle",
)
node.register_service(UserService())

try:
    node.run()
except KeyboardInterrupt:
    node.stop()
