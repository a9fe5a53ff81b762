#!/usr/bin/env python3
import logging
import os
from time import sleep

from isc.server import Node, expose, on


class ExampleService:
    name = "example"

    @expose
    def add(self, a, b, wait=0):
        sleep(wait)
        return str(a + b) * 8000

    @expose
    def raise_error(self):
        raise Exception("testing")

    def private_method(self):
        return "Cannot call me!"

    @on("boom")
    def do_stuff(self, arg):
        print("Got stuff:", arg)

    @expose
    def slow_method(self):
        sleep(3)

    # @local_timer(timeout=3)
    # def print_stats(self):
    #     print('Stats: foobar')


service = ExampleService()

# ISC_URL, ISC_EXCHANGE and ISC_CODEC let the test suite and `make demo` pick the broker,
# an exchange of their own and the codec (the pickle codec must be allowed explicitly).
node = Node(
    url=os.environ.get("ISC_URL"),
    exchange=os.environ.get("ISC_EXCHANGE", "isctest"),
    allow_pickle=os.environ.get("ISC_CODEC") == "pickle",
)
node.set_logging_level(logging.DEBUG)
node.register_service(service)

if __name__ == "__main__":
    try:
        node.run()
    except KeyboardInterrupt:
        node.stop()
