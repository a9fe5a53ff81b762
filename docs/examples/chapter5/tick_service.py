# tick_service.py
import os

from isc.server import Node, expose, local_timer

# The timer period in seconds; ISC_TICK lets the test suite run the example faster.
TICK = float(os.environ.get("ISC_TICK", 5))


class TickerService:
    name = "ticker"

    def __init__(self):
        """
        WARNING:
        Do NOT do this in real projects. (I'm speaking about local state
        which is represented by `self.ticks` attribute here.)

        Services MUST be stateless.
        This dirty trick right here is used just to demonstrate
        how the timer works without involving any external storage.

        In real project:
        - ALWAYS database or any other external storage instead of `self`
        - NEVER mutate service object.

        So in real project you would have done something like this:
        self.db_conn = SomeDatabaseConnection()
        #
        spam = next(self.db_conn.query('SELECT spam;').fetchone(), None)
        """
        self.ticks = 0

    @expose
    def get_ticks(self):
        return self.ticks

    @expose
    def reset_ticks(self):
        self.ticks = 0

    @local_timer(timeout=TICK)
    def local_timer(self):
        self.ticks += 1


# ISC_URL, ISC_EXCHANGE and ISC_CODEC let the test suite pick the broker, an exchange of its
# own and the codec (the pickle codec must be allowed explicitly). Unset: the defaults.
node = Node(
    url=os.environ.get("ISC_URL"),
    exchange=os.environ.get("ISC_EXCHANGE", "isc"),
    allow_pickle=os.environ.get("ISC_CODEC") == "pickle",
)
node.register_service(TickerService())

try:
    node.run()
except KeyboardInterrupt:
    node.stop()
