"""Unit-test services without a broker, and run real nodes in integration tests.

:class:`ServiceHarness` hosts one service the way a :class:`~isc.server.Node` does, minus
RabbitMQ: its node serves on a private in-memory broker (:mod:`isc.client.testing.memory`),
and :meth:`~ServiceHarness.call` calls it through a :class:`~isc.client.Client` on that broker,
so the request takes the node's own path (codec check, size limit, method lookup, argument
check, hooks, error replies, reply encoding, acks) and the reply the client's;
:meth:`~ServiceHarness.notify` delivers a notification to the service's ``@on`` handlers;
:meth:`~ServiceHarness.fire_timer` runs one tick of a ``@local_timer``::

    users = ServiceHarness(UserService())
    assert users.call("get_user", 1) == {"username": "Andrew"}
    users.call("delete_everything")   # RemoteException, remote_type "PermissionError"
    users.notify("new_message", "Andrew", "Hello!")
    users.fire_timer("cleanup")

A service that calls other services through a :class:`~isc.client.Client` gets a
:class:`isc.client.testing.FakeClient` in tests. :func:`running_node` runs a real node in the
background of a test against a broker (``isc.client.testing``'s pytest plugin starts one).
Like every ``isc.server`` module, importing this one applies gevent's monkey patching.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from isc.client import Client
from isc.client.testing.memory import MemoryBroker
from isc.core import (
    AbstractCodec,
    ConfigurationError,
    Notification,
    Request,
    TypedJSONCodec,
    redact_url,
)

from ._node import Hook, Node

__all__ = ["ServiceHarness", "running_node"]

log = logging.getLogger("isc.server.testing")


class ServiceHarness:
    """Host one service in-process, as a node would, to unit-test it without a broker.

    Calls go through the same code a :class:`~isc.server.Node` and a
    :class:`~isc.client.Client` run for them, over an in-memory broker instead of RabbitMQ:
    :meth:`call` waits for its result, so calls run one at a time (in the node's greenlet
    pool). Notifications and timer ticks run in the calling thread through the node's
    listener and timer code, and a failing ``@on`` handler or timer raises its exception here
    (a node logs it), so tests see it. The node runs no timers of its own.

    :param service: the service instance (any object with a ``name``, as for
        :meth:`Node.register_service`).
    :param codec: the codec the arguments, results and notifications travel through
        (default :class:`~isc.core.TypedJSONCodec`, the client's default), so a value the
        wire cannot carry fails in the test as it would in production.
    :param round_trip: ``False`` hands arguments and results over as they are, uncoded
        (straight to the node's method dispatch).
    :param call_timeout: how many seconds :meth:`call` waits for the result before it
        raises :class:`~isc.core.TimeoutException`.
    :param node_options: passed to :class:`~isc.server.Node`, to test a node configured as
        in production: ``allow_pickle=True`` (needed with the pickle codec, as on a real
        node), ``codecs``, ``max_message_size``, ``exchange``.
    """

    def __init__(
        self,
        service: object,
        *,
        codec: AbstractCodec | None = None,
        round_trip: bool = True,
        call_timeout: float = 60.0,
        **node_options: Any,
    ) -> None:
        self.codec = codec if codec is not None else TypedJSONCodec()
        self.round_trip = round_trip
        broker = MemoryBroker()
        self._node = Node(transport=broker.transport, **node_options)
        self._node.register_service(service)
        self.service = service
        #: The service's name (its ``name`` attribute).
        self.name = next(iter(self._node._services.services))
        self._node._open_transport()  # serves on the broker; no timers, no signal handlers
        # The caller: sizes are the node's to check, so the client sets no limit of its own.
        self._client = Client(
            "memory://service-harness",
            self._node.exchange,
            self.codec,
            invoke_timeout=call_timeout,
            max_message_size=None,
            transport=broker.transport,
        )
        # Registered after the client's own finalizer, so it runs first (CPython calls an
        # object's finalizers newest first): a dropped harness stops its client quietly.
        weakref.finalize(self, _close, self._client, broker)

    @property
    def node(self) -> Node:
        """The node (connected to the harness's in-memory broker only) whose code runs the
        calls; add hooks to it."""
        return self._node

    def add_hook(self, name: str, fn: Hook | None = None) -> Any:
        """Register a hook as :meth:`Node.add_hook` does."""
        return self._node.add_hook(name, fn)

    # -- what the service offers -------------------------------------------------------------

    @property
    def exposed(self) -> dict[str, str]:
        """The ``@expose``d methods, name → signature (what ``_inspect`` answers)."""
        exposed: dict[str, str] = self._node._services.inspect(self.name)["exposed"]
        return exposed

    @property
    def events(self) -> dict[str, list[str]]:
        """Event name → the names of the service's ``@on`` handlers for it (any mode)."""
        return {
            event: [getattr(fn, "__name__", repr(fn)) for fn in handlers]
            for event, handlers in sorted(self._node._services.all_listeners().items())
        }

    @property
    def timers(self) -> dict[str, float]:
        """Method name → period in seconds of every ``@local_timer`` and ``@cluster_timer``."""
        return {name.split(".", 1)[1]: period for period, name, _ in self._all_timers()}

    def _all_timers(self) -> list[tuple[float, str, Any]]:
        services = self._node._services
        return [*services.timers(), *services.cluster_timers()]

    # -- driving it --------------------------------------------------------------------------

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` as ``client.<service>.<method>(*args, **kwargs)`` would.

        Returns the result as the caller would receive it. Raises
        :class:`~isc.core.RemoteException` when a client would: the method is missing,
        private (not ``@expose``d) or called with wrong arguments, or it raised (the
        exception's type name is in ``remote_type``), or its result cannot be encoded, or the
        node refuses the codec or the size of the request or of the reply. Raises
        :class:`~isc.core.EncodeError` when the arguments cannot be encoded (a client raises
        it before sending).
        """
        if self.round_trip:
            return self._client.call(self.name, method, args, kwargs)
        reply = self._node._execute(self.name, Request(method, args, kwargs))
        error = reply.to_exception()
        if error is not None:
            raise error
        return reply.result

    def notify(self, event: str, /, *args: Any, **kwargs: Any) -> int:
        """Deliver ``client.notify(event, *args, **kwargs)`` to the service's ``@on`` handlers.

        Handlers of every mode run once (``mode="service"`` ones as the node that takes the
        notification would; the harness does not retry or dead-letter). Returns how many
        handlers ran (0 when none listens, which a node ignores too). Every handler runs even
        if one fails; then the first failure is raised (a node only logs it).
        """
        notification = Notification(event, args, kwargs)
        if self.round_trip:
            envelope = notification.encode(self.codec)
            # the node's codecs decode it: one the node refuses raises here (a node drops it)
            notification = Notification.decode(
                envelope, self._node.codecs.get(envelope.content_type)
            )
        handlers = self._node._services.all_listeners().get(notification.event, [])
        failures: list[Exception] = []
        for handler in handlers:
            try:
                handler(*notification.args, **notification.kwargs)
            except Exception as exc:
                log.exception("listener %s for event %r failed", _qualname(handler), event)
                failures.append(exc)
        if failures:
            raise failures[0]
        return len(handlers)

    def fire_timer(self, method: str) -> None:
        """Run one tick of the ``@local_timer`` or ``@cluster_timer`` method ``method``, with
        the node's hooks.

        Raises what the method raised (a node logs it and keeps ticking), or
        :class:`~isc.core.ConfigurationError` when ``method`` is not a timer of the service.
        """
        name = f"{self.name}.{method}"
        for _period, timer, fn in self._all_timers():
            if timer == name:
                error = self._node._tick(timer, fn)
                if error is not None:
                    raise error
                return
        known = ", ".join(sorted(self.timers)) or "none"
        raise ConfigurationError(
            f"{name} is not a @local_timer or @cluster_timer method "
            f"(the timers of {self.name}: {known})"
        )

    def __repr__(self) -> str:
        return f"<ServiceHarness {self.name} codec={self.codec.content_type}>"


@contextlib.contextmanager
def running_node(node: Node, ready_timeout: float = 30.0) -> Iterator[Node]:
    """Run ``node`` in a background thread until the block ends; ready when the block starts.

    For integration tests: ``with running_node(node): client.users.get_user(1)``. Raises
    :class:`~isc.core.ConfigurationError` when the node does not consume its queues within
    ``ready_timeout`` seconds (say, a wrong URL). Leaving the block stops the node as
    :meth:`Node.stop` does and waits for its thread.
    """
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            node.run()
        except BaseException as exc:  # reported to the test below, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=serve, name="isc-test-node", daemon=True)
    thread.start()
    try:
        if not node.wait_for_ready(ready_timeout):
            error = failure[0] if failure else getattr(node._worker, "last_error", None)
            detail = f" ({type(error).__name__}: {str(error) or repr(error)})" if error else ""
            raise ConfigurationError(
                f"the node did not start serving on {redact_url(node.url)} within "
                f"{ready_timeout:g}s{detail}; is the URL right and the broker up?"
            )
        yield node
    finally:
        node.stop()
        thread.join(node.drain_timeout + 10)


def _close(client: Client, broker: MemoryBroker) -> None:
    """A harness was dropped: stop its client and its node's transport (nothing blocks)."""
    client.stop(timeout=0)
    broker.close()


def _qualname(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", repr(fn)))
