from time import sleep

from isc.server import Node, expose, on


class ExampleService:
    name = "example"

    @expose
    def add(self, a, b):
        return a + b

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


if __name__ == "__main__":
    node = Node()  # the broker on 127.0.0.1, the exchange "isc"
    node.register_service(ExampleService())
    node.run()  # serves until Ctrl-C or SIGTERM
