"""A service using a module-level client, as chapter 4's messages service does."""

import os

from isc.client import Client
from isc.server import expose

client = Client(os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"))


class GreeterService:
    name = "greeter"

    @expose
    def greet(self, user_id):
        user = client.users.get_user(user_id)
        client.notify("greeted", user["username"])
        return f"Hello, {user['username']}!"
