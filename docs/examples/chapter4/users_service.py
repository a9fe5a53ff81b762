# users_service.py
import os

from superapp.models import User

from isc.server import Node, expose, on


class UserService:
    name = "users"

    @expose
    def get_user(self, id):
        # Let's use some ORM to retrieve the user from DB
        user = User.objects.filter(id=id).first()
        if user:
            # User not found!
            return {"username": user.username}
        return None

    @on("new_message")
    def on_new_message(self, username, message):
        print(f"New message for user {username}: {message}")


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
