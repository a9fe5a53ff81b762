"""`make demo`: run the documentation's comprehensive example (chapter 2) end to end.

Starts docs/examples/chapter2/server.py, waits until its node is ready, runs client.py (whose
asserts exercise calls, errors, a notification and a timeout), stops the server with SIGTERM
and prints what each program printed. The broker is the one at ISC_URL if set, else a
throwaway RabbitMQ node started (and removed afterwards) with the test harness. Exits non-zero
if anything did not go as documented.

On a broker of your own (ISC_URL), the demo uses an exchange of its own, ``isctest-demo-<id>``
(ISC_EXCHANGE picks another), so no other node or client on that broker sees its calls; when
it ends, it deletes the service queue its node declared (unless another node still consumes
it) and the exchanges, if they were its own. The broker is left as it found it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path

import pika
import pika.exceptions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "integration-tests"))  # the harness is not an installed package

from isc.core import fanout_exchange_name, service_queue_name  # noqa: E402
from isc_testing import RabbitMQNode, WaitTimeout, wait_for  # noqa: E402
from isc_testing.nodes import NodeProcess, service_answers  # noqa: E402

EXAMPLE = ROOT / "docs" / "examples" / "chapter2"
#: The service server.py hosts.
SERVICE = "example"
CLIENT_TIMEOUT = 60.0
#: Run the server with a log handler, so the node's own log (the example sets the isc loggers
#: to DEBUG) shows how it handled each call; the program itself is run unchanged.
SERVER_WRAPPER = (
    "import logging, runpy, sys; "
    "logging.basicConfig(format='%(asctime)s %(levelname)s %(name)s: %(message)s'); "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def section(title: str, text: str) -> None:
    print(f"\n----- {title} " + "-" * max(0, 60 - len(title)))
    print(text.rstrip() if text.strip() else "(no output)")
    print("-" * 67, flush=True)


def broker_url(stack: ExitStack) -> str:
    """ISC_URL, or a throwaway node closed when ``stack`` closes; exits 1 if neither exists."""
    url = os.environ.get("ISC_URL", "").strip()
    if url:
        step(f"using the broker at ISC_URL ({url.split('@')[-1]})")
        return url
    if not RabbitMQNode.available():
        print(
            "make demo needs RabbitMQ: install it (sudo apt-get install rabbitmq-server) "
            "or point ISC_URL at a broker (ISC_URL=amqp://guest:guest@host:5672/ make demo)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    step("starting a throwaway RabbitMQ node (private ports and temp dir; ~10 s)")
    node = stack.enter_context(RabbitMQNode.start())
    stack.callback(step, "stopped the RabbitMQ node and deleted its temp dir")
    step(f"RabbitMQ is up at {node.amqp_url} after {node.boot_seconds:.1f} s")
    return node.amqp_url


def remove_from_broker(url: str, exchange: str, *, own_exchange: bool) -> None:
    """Delete the service queue the demo's node declared on ``url`` (unless another node
    still consumes it) and, when ``own_exchange``, the exchange and its fanout twin."""
    queue = service_queue_name(exchange, SERVICE)
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
    except (pika.exceptions.AMQPError, OSError) as exc:
        print(f"make demo: could not remove queue {queue} from the broker: {exc!r}")
        return
    removed = []
    try:
        try:
            connection.channel().queue_delete(queue, if_unused=True)
            removed.append(f"queue {queue}")
        except pika.exceptions.ChannelClosedByBroker as exc:
            step(f"left queue {queue} on the broker: {exc.reply_text} (another node uses it)")
        if own_exchange:
            channel = connection.channel()
            for name in (exchange, fanout_exchange_name(exchange)):
                channel.exchange_delete(name)
                removed.append(f"exchange {name}")
    finally:
        connection.close()
    step(f"removed from the broker: {', '.join(removed) or 'nothing'}")


def main() -> int:
    failures: list[str] = []
    with ExitStack() as stack:
        own_broker = bool(os.environ.get("ISC_URL", "").strip())
        url = os.environ["ISC_URL"] = broker_url(stack)  # the example programs read it
        exchange = os.environ.get("ISC_EXCHANGE", "").strip()
        own_exchange = own_broker and not exchange
        if not exchange:
            exchange = f"isctest-demo-{uuid.uuid4().hex[:8]}" if own_broker else "isctest"
        os.environ["ISC_EXCHANGE"] = exchange
        if own_broker:  # runs once the server is gone (the stack unwinds last in, first out)
            stack.callback(remove_from_broker, url, exchange, own_exchange=own_exchange)

        step(f"starting {EXAMPLE.relative_to(ROOT)}/server.py (exchange {exchange!r})")
        server = NodeProcess(
            [sys.executable, "-c", SERVER_WRAPPER, str(EXAMPLE / "server.py")],
            ready_probe=service_answers(url, exchange, SERVICE),
            timeout=30.0,
        )
        server.start()  # raises with the server's output if it never gets ready
        stack.callback(server.kill)  # backstop if anything below raises
        step(f"server ready (pid {server.pid})")

        step(f"running {EXAMPLE.relative_to(ROOT)}/client.py (takes ~4 s: it sleeps 2 s first)")
        client = subprocess.run(
            [sys.executable, str(EXAMPLE / "client.py")],
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            check=False,
        )
        if client.returncode == 0:
            step("client.py exited 0: every assert in it held")
        else:
            failures.append(f"client.py exited {client.returncode}")

        try:
            wait_for(
                lambda: any("Got stuff:" in line for line in server.lines),
                10.0,
                "the server to print the 'boom' notification",
            )
            step("the server received the client's 'boom' notification")
        except WaitTimeout as exc:
            failures.append(str(exc))

        step("stopping the server with SIGTERM (it lets the in-flight slow_method finish)")
        code = server.stop()
        if code == 0:
            step("server exited 0")
        else:
            failures.append(f"server.py exited {code} after SIGTERM")

        section("server.py output (with the node's log)", server.output)
        section(f"client.py output (exit code {client.returncode})", client.stdout + client.stderr)
    if failures:
        print("\nmake demo FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("\nmake demo: the chapter 2 example ran as documented.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
