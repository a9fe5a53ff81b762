"""A TCP proxy for fault injection: forwards 127.0.0.1:<port> to a broker, and can cut links.

::

    with TcpProxy.for_url(node.amqp_url) as proxy:
        proxy.url                                # the same URL, through the proxy
        ...
        proxy.cut()   # every live connection is reset, both sides; new ones are still accepted

One thread runs a :mod:`selectors` loop over the listening socket and every forwarded
connection, so cutting happens in that thread and never races with forwarding.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import struct
import threading
import urllib.parse
from types import TracebackType
from typing import Any, Callable

__all__ = ["TcpProxy"]

_CHUNK = 65536
_MAX_BUFFER = 4 * 1024 * 1024  # stop reading a side while its peer has this much unsent
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class _Side:
    """One socket of a forwarded connection and the bytes waiting to be written to it."""

    def __init__(self, sock: socket.socket, link: _Link) -> None:
        self.sock = sock
        self.link = link
        self.outbuf = bytearray()
        self.eof = False  # the socket's peer sent FIN: read no more from it
        self.events = 0  # what the selector is watching (0: not registered)

    @property
    def peer(self) -> _Side:
        """The other socket of the same connection."""
        return self.link.upstream if self is self.link.client else self.link.client


class _Link:
    """A forwarded connection: the accepted client socket and the socket to the target."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = _Side(client, self)
        self.upstream = _Side(upstream, self)
        self.closed = False

    @property
    def sides(self) -> tuple[_Side, _Side]:
        """Both sides."""
        return (self.client, self.upstream)


class TcpProxy:
    """Forwards TCP connections from 127.0.0.1:<free port> to ``(target_host, target_port)``.

    :meth:`cut` abruptly resets every live connection (both the client's and the target's
    socket) while still accepting new ones; :meth:`close` stops the proxy. If the target
    refuses a connection, the client's connection is reset at once.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        connect_timeout: float = 5.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.connect_timeout = connect_timeout
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((listen_host, 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.host: str = self._listener.getsockname()[0]
        self.port: int = self._listener.getsockname()[1]
        #: How many connections were accepted so far.
        self.accepted = 0
        #: With :meth:`for_url`: the URL to connect through the proxy.
        self.url: str | None = None
        #: Bytes swallowed since :meth:`blackhole` (both directions).
        self.swallowed = 0
        self._blackhole = False
        self._links: set[_Link] = set()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._stopping = False
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"TcpProxy-{self.port}->{target_port}", daemon=True
        )
        self._thread.start()

    @classmethod
    def for_url(cls, url: str, **options: Any) -> TcpProxy:
        """A proxy to the host and port of ``url`` (default port 5672); see :attr:`url`."""
        parts = urllib.parse.urlsplit(url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 5672, **options)
        proxy.url = proxy.rewrite_url(url)
        return proxy

    # -- public API --------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """Where clients connect: ``(host, port)``."""
        return (self.host, self.port)

    @property
    def active_connections(self) -> int:
        """How many forwarded connections are open right now."""
        return len(self._links)

    def rewrite_url(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (user, path and query kept)."""
        parts = urllib.parse.urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{self.host}:{self.port}" if userinfo else f"{self.host}:{self.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def blackhole(self) -> None:
        """Silently drop every byte from now on, both ways, as a dead network path does.

        Live connections stay open but nothing reaches the other side; :meth:`cut` ends it.
        """
        self._call(self._start_blackhole)

    def _start_blackhole(self) -> None:
        self._blackhole = True
        self.swallowed = 0

    def cut(self, *, reset: bool = True) -> int:
        """Abruptly close every live connection on both sides; return how many were cut.

        With ``reset`` (the default) the sockets send RST, as when a network path dies or a
        firewall drops state; otherwise they close with FIN. New connections are still
        accepted (and forwarded again after a :meth:`blackhole`). Returns once the sockets
        are closed.
        """
        result = self._call(lambda: self._cut(reset=reset))
        assert isinstance(result, int)
        return result

    def close(self) -> None:
        """Stop accepting, reset every connection and stop the proxy thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError, TimeoutError):
                self._call(self._request_stop)
            self._thread.join(timeout=10)
        self._wake_w.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<TcpProxy {self.host}:{self.port} -> {self.target[0]}:{self.target[1]}, "
            f"{self.active_connections} live>"
        )

    # -- calls into the loop thread ----------------------------------------------------------

    def _call(self, func: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``func`` in the loop thread and return its result."""
        if not self._thread.is_alive():
            raise RuntimeError(f"{self!r} is not running")
        call = _Call(func)
        self._calls.put(call)
        with contextlib.suppress(BlockingIOError):  # a wake-up byte is already pending
            self._wake_w.send(b"\0")
        if not call.done.wait(timeout):
            raise TimeoutError(f"{self!r} did not answer within {timeout}s")
        if call.error is not None:
            raise call.error
        return call.result

    def _request_stop(self) -> None:
        self._stopping = True

    # -- the loop thread ---------------------------------------------------------------------

    def _run(self) -> None:
        sel = self._selector
        sel.register(self._listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping:
                for key, mask in sel.select():
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._run_calls()
                    else:
                        side: _Side = key.data
                        if not side.link.closed and mask & selectors.EVENT_READ:
                            self._read(side)
                        if not side.link.closed and mask & selectors.EVENT_WRITE:
                            self._write(side)
        finally:
            self._close_all(reset=True)
            sel.close()
            self._listener.close()
            self._wake_r.close()
            self._run_calls()  # fail nobody: answer what is still queued

    def _run_calls(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                return
            call.run()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.accepted += 1
            try:
                upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
            except OSError:
                _close(client, reset=True)  # target down: the client sees a reset
                continue
            link = _Link(client, upstream)
            for side in link.sides:
                side.sock.setblocking(False)
                side.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._links.add(link)
            self._update(link)

    def _read(self, side: _Side) -> None:
        try:
            data = side.sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(side.link, reset=True)
            return
        if data and self._blackhole:
            self.swallowed += len(data)
        elif data:
            side.peer.outbuf += data
        else:
            side.eof = True  # half-close: pass the FIN on once the peer's buffer is flushed
            if not side.peer.outbuf:
                _shutdown_write(side.peer.sock)
        self._update(side.link)

    def _write(self, side: _Side) -> None:
        try:
            sent = side.sock.send(side.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(side.link, reset=True)
            return
        del side.outbuf[:sent]
        if not side.outbuf and side.peer.eof:
            _shutdown_write(side.sock)
        self._update(side.link)

    def _update(self, link: _Link) -> None:
        """Watch each socket for what it can do next; drop the link once both sides are done."""
        if all(side.eof and not side.outbuf for side in link.sides):
            self._drop(link, reset=False)
            return
        for side in link.sides:
            events = 0
            if not side.eof and len(side.peer.outbuf) < _MAX_BUFFER:
                events |= selectors.EVENT_READ
            if side.outbuf:
                events |= selectors.EVENT_WRITE
            if events == side.events:
                continue
            if side.events == 0:
                self._selector.register(side.sock, events, side)
            elif events == 0:
                self._selector.unregister(side.sock)
            else:
                self._selector.modify(side.sock, events, side)
            side.events = events

    def _drop(self, link: _Link, *, reset: bool) -> None:
        if link.closed:
            return
        link.closed = True
        self._links.discard(link)
        for side in link.sides:
            if side.events:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(side.sock)
                side.events = 0
            _close(side.sock, reset=reset)

    def _cut(self, *, reset: bool) -> int:
        self._blackhole = False
        return self._close_all(reset=reset)

    def _close_all(self, *, reset: bool) -> int:
        links = list(self._links)
        for link in links:
            self._drop(link, reset=reset)
        return len(links)


class _Call:
    """A function to run in the loop thread, and its outcome."""

    def __init__(self, func: Callable[[], Any]) -> None:
        self.func = func
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self.func()
        except BaseException as exc:  # handed to the calling thread
            self.error = exc
        finally:
            self.done.set()


def _shutdown_write(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def _close(sock: socket.socket, *, reset: bool) -> None:
    if reset:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with contextlib.suppress(OSError):
        sock.close()
