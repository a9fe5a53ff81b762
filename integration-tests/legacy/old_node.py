"""An isclib 1.2 node serving service ``legacy``: runs in the isclib 1.2 virtualenv.

    python -I -u old_node.py URL EXCHANGE

Prints ``isclib12-node-ready`` once it consumes its queues (isclib 1.2's ``wait_for_ready()``
returns at once, so the ready line comes from kombu's ``ConsumerMixin.on_consume_ready``
hook, which runs after the queues are declared, bound and consumed). Logs go to stderr at
INFO level (isclib's logger ``ipc``). Stops on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from isc.server import Node, expose, on

READY_LINE = "isclib12-node-ready"


class Legacy:
    """Calls, errors and a recording listener, as an isclib 1.2 service."""

    name = "legacy"

    def __init__(self):
        self.received = []
        self.lock = threading.Lock()

    @expose
    def add(self, a, b):
        return a + b

    @expose
    def echo(self, *args, **kwargs):
        return [list(args), kwargs]

    @expose
    def raise_error(self):
        raise Exception("testing")

    @expose
    def raise_empty(self):
        raise ValueError()

    def private_method(self):
        return "Cannot call me!"

    @on("boom")
    def record(self, data):
        with self.lock:
            self.received.append(data)

    @expose
    def get_received(self):
        with self.lock:
            return list(self.received)


class ReadyNode(Node):
    """isclib 1.2's Node, announcing when it really consumes."""

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        sys.stdout.write(READY_LINE + "\n")
        sys.stdout.flush()


def main():
    url, exchange = sys.argv[1:3]
    node = ReadyNode(url=url, exchange=exchange)
    node.set_logging_level(logging.INFO)
    node.register_service(Legacy())

    def stop(signum, frame):
        node.stop()

    signal.signal(signal.SIGTERM, stop)
    node.run()


if __name__ == "__main__":
    main()
