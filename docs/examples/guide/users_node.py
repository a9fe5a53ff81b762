import os

from isc.server import Node, expose, local_timer, on


class UserService:
    name = "users"

    @expose
    def get_user(self, id):
        return {1: "Andrew", 2: "Victoria"}.get(id)

    @on("new_message")
    def on_new_message(self, username, message):
        print(f"new message for {username}: {message}")

    @local_timer(timeout=60)
    def refresh_cache(self):
        pass


# ISC_URL and ISC_EXCHANGE let the test suite point the node at its own broker.
node = Node(
    url=os.environ.get("ISC_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
    thread_pool_size=32,
)
node.register_service(UserService())
node.run()  # returns after SIGTERM, Ctrl-C or node.stop()
