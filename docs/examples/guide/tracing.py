from opentelemetry import trace

from isc.client import Client


def checkout(client: Client, order: dict) -> None:
    tracer = trace.get_tracer("web")
    with tracer.start_as_current_span("checkout"):
        client.orders.place(order)  # the node's "orders.place" span joins this trace
