"""A throwaway RabbitMQ node: private ports, a private temp dir, started and stopped on demand.

Usable with or without pytest::

    with RabbitMQNode.start() as node:      # boots a node; waits for a real AMQP handshake
        print(node.amqp_url)                 # amqp://guest:guest@127.0.0.1:<port>/%2F
        node.stop()                          # a broker outage...
        node.start()                         # ...and back, on the same ports and directories
    # leaving the block stops the node and deletes its temp dir

It needs the ``rabbitmq-server`` package installed (Debian and Ubuntu: ``apt-get install
rabbitmq-server``; the service it installs may stay stopped). The node runs
``/usr/lib/rabbitmq/bin/rabbitmq-server`` directly (the ``/usr/sbin`` wrapper switches to the
``rabbitmq`` user, which cannot write our temp dir) in its own process group, with every
RabbitMQ setting (node name, ports, data, logs, config, Erlang cookie) pointed into the temp
dir. It listens on 127.0.0.1 only and never touches the machine's own broker.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Callable

import pika
import pika.exceptions

from isc.client.testing.waiting import Deadline
from isc.core import fanout_exchange_name

__all__ = [
    "DEFAULT_BIN_DIR",
    "LOCALHOST",
    "BrokerError",
    "BrokerStartError",
    "RabbitMQCluster",
    "RabbitMQNode",
    "amqp_handshake",
    "delete_exchanges",
    "free_port",
    "log_tail",
    "process_group_rss",
    "unique_exchange_name",
    "wait_for_broker",
]

#: Where Debian's rabbitmq-server package keeps the real scripts (not the /usr/sbin wrappers).
DEFAULT_BIN_DIR = Path("/usr/lib/rabbitmq/bin")
#: Throwaway nodes listen here only.
LOCALHOST = "127.0.0.1"

#: Ports a throwaway node must never take: epmd, the system broker's AMQP / distribution /
#: management ports, and the range rabbitmqctl uses for its own Erlang distribution.
_RESERVED_PORTS = frozenset({4369, 5672, 15672, 25672, *range(35672, 35683)})

_node_counter = itertools.count(1)

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """A throwaway broker could not be managed as asked."""


class BrokerStartError(BrokerError):
    """A throwaway broker did not accept an AMQP handshake in time (the message has its logs)."""


def free_port(exclude: Collection[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that is free right now (not reserved, not in ``exclude``)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOCALHOST, 0))
            port: int = sock.getsockname()[1]
        if port not in _RESERVED_PORTS and port not in exclude:
            return port
    raise BrokerError("could not find a free TCP port on 127.0.0.1")


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved_level = logging.NOTSET


@contextlib.contextmanager
def _quiet_pika() -> Iterator[None]:
    """Silence pika's ERROR logs for the expected failed handshakes while a node boots."""
    global _quiet_depth, _quiet_saved_level
    logger = logging.getLogger("pika")
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved_level = logger.level
            logger.setLevel(logging.CRITICAL)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                logger.setLevel(_quiet_saved_level)


def unique_exchange_name(prefix: str = "isc_test") -> str:
    """An isc exchange name no other test uses (it names the xdist worker, if any)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{prefix}_{worker}_{uuid.uuid4().hex[:12]}"


def delete_exchanges(url: str, exchange: str) -> None:
    """Delete isc ``exchange`` and its fanout twin; a broker that is gone gets a log line."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
    except (pika.exceptions.AMQPError, OSError) as exc:
        log.warning("could not delete exchange %s after the test: %r", exchange, exc)
        return
    try:
        channel = connection.channel()
        channel.exchange_delete(exchange)
        channel.exchange_delete(fanout_exchange_name(exchange))
    finally:
        connection.close()


def amqp_handshake(url: str, timeout: float = 5.0) -> None:
    """Open an AMQP connection to ``url`` (the full handshake) and close it; raise on failure."""
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    connection = pika.BlockingConnection(params)
    connection.close()


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def log_tail(log_files: Sequence[Path], lines: int = 40) -> str:
    """The last ``lines`` lines of each existing file in ``log_files``, with headers."""
    parts = [f"--- {path} ---\n{_tail(path, lines)}" for path in log_files if path.exists()]
    return "\n".join(parts) if parts else "(no log files)"


def wait_for_broker(
    url: str,
    timeout: float = 60.0,
    *,
    process_alive: Callable[[], bool] | None = None,
    describe_logs: Callable[[], str] = lambda: "(no logs)",
) -> float:
    """Wait until ``url`` answers an AMQP handshake; return the seconds it took.

    Probes the TCP port first (cheap, silent), then does a real pika handshake, until a
    monotonic deadline. Raises :class:`BrokerStartError` with ``describe_logs()`` on timeout,
    or at once if ``process_alive()`` says the broker process has exited.
    """
    started = time.monotonic()
    deadline = Deadline(timeout)
    parsed = urllib.parse.urlsplit(url)
    address = (parsed.hostname or LOCALHOST, parsed.port or 5672)
    last_error: BaseException | None = None
    with _quiet_pika():
        while True:
            if process_alive is not None and not process_alive():
                raise BrokerStartError(
                    f"the RabbitMQ node for {address[0]}:{address[1]} exited while booting\n"
                    f"{describe_logs()}"
                )
            try:
                probe_timeout = max(0.2, min(2.0, deadline.remaining()))
                with socket.create_connection(address, timeout=probe_timeout):
                    pass
                amqp_handshake(url, timeout=max(1.0, min(5.0, deadline.remaining())))
            except (OSError, pika.exceptions.AMQPError) as exc:
                last_error = exc
            else:
                return time.monotonic() - started
            if deadline.expired:
                raise BrokerStartError(
                    f"no AMQP handshake from {address[0]}:{address[1]} within {timeout:g}s "
                    f"(last error: {last_error!r})\n{describe_logs()}"
                ) from last_error
            deadline.sleep(0.1)


def _group_members(pgid: int) -> list[int]:
    """Pids of the processes in group ``pgid`` (Linux ``/proc``; elsewhere empty)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...
            if int(fields[2]) == pgid:
                members.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return members


def process_group_rss(pgid: int) -> int:
    """Resident memory in bytes of every process in group ``pgid`` (Linux ``/proc``; else 0)."""
    total = 0
    for pid in _group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    return total


class _NodeState:
    """What must be cleaned up even if a node object is dropped without close()."""

    def __init__(self, base_dir: Path, owns_dir: bool) -> None:
        self.base_dir = base_dir
        self.owns_dir = owns_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def kill_group(self, sig: int) -> None:
        """Send ``sig`` to the node's whole process group, if there is one."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL the whole group and wait (bounded) until none of it is left, zombies included.

        The server script's children (the Erlang VM) die first, so the script reaps them;
        killed together, they would wait for init to reap them.
        """
        proc = self.proc
        if proc is None:
            return
        for pid in _group_members(proc.pid):
            if pid != proc.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        self.kill_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        deadline = Deadline(timeout)
        while not deadline.expired:
            try:
                os.killpg(proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            deadline.sleep(0.01)
        self.proc = None

    def emergency_cleanup(self) -> None:
        """Kill the node outright and delete the temp dir (garbage collection or exit)."""
        self.kill_all()
        if self.owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


class _HybridStart:
    """``RabbitMQNode.start(**options)`` makes and boots a node; ``node.start()`` (re)boots one."""

    def __get__(
        self, obj: RabbitMQNode | None, owner: type[RabbitMQNode]
    ) -> Callable[..., RabbitMQNode]:
        if obj is None:
            return owner.launch
        return obj.boot

    def __repr__(self) -> str:
        return "RabbitMQNode.launch on the class, node.boot on a node"


class RabbitMQNode:
    """A private, throwaway RabbitMQ node for tests and demos (needs ``rabbitmq-server``).

    Creating the object picks the ports, node name and temp dir; :meth:`start` boots the node
    and waits for an AMQP handshake; :meth:`stop` stops it (the ports and data stay theirs);
    :meth:`close` kills it and deletes the temp dir. ``RabbitMQNode.start(**options)`` on the
    class creates and boots a node in one call::

        with RabbitMQNode.start() as node:   # about 5-10 s
            client = Client(node.amqp_url)
            node.stop()                      # a broker outage...
            node.start()                     # ...and back, on the same port

    It listens on 127.0.0.1 only, on free ports, with its data, logs and Erlang cookie in its
    temp dir, so it never touches the machine's own broker.
    """

    #: ``RabbitMQNode.start(**options)`` is :meth:`launch`; ``node.start()`` is :meth:`boot`.
    start = _HybridStart()

    def __init__(
        self,
        *,
        amqp_port: int | None = None,
        dist_port: int | None = None,
        nodename: str | None = None,
        base_dir: str | Path | None = None,
        bin_dir: str | Path = DEFAULT_BIN_DIR,
        boot_timeout: float = 60.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self.bin_dir = Path(bin_dir)
        self._choose_ports = amqp_port is None and dist_port is None
        self.amqp_port = amqp_port or free_port()
        self.dist_port = dist_port or free_port(exclude={self.amqp_port})
        self.nodename = nodename or f"isc-test-{os.getpid()}-{next(_node_counter)}@localhost"
        self.boot_timeout = boot_timeout
        self.stop_timeout = stop_timeout
        #: Seconds from the last spawn to the first AMQP handshake (None before one).
        self.boot_seconds: float | None = None
        #: ``time.time()`` when the server process was last spawned (None before).
        self.spawned_at: float | None = None
        self._spawned_monotonic = 0.0
        self._booted_once = False
        self._closed = False
        if base_dir is None:
            self._state = _NodeState(Path(tempfile.mkdtemp(prefix="isc-rabbitmq-")), True)
        else:
            self._state = _NodeState(Path(base_dir), False)
        self._finalizer = weakref.finalize(self, self._state.emergency_cleanup)
        self._prepare_dirs()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def available(cls, bin_dir: str | Path = DEFAULT_BIN_DIR) -> bool:
        """True if this machine has the RabbitMQ scripts a node needs."""
        return all(os.access(Path(bin_dir) / name, os.X_OK) for name in _SCRIPTS)

    @classmethod
    def launch(cls, *, wait: bool = True, **options: Any) -> RabbitMQNode:
        """Create a node with ``options`` (see ``__init__``) and boot it; close it on failure."""
        node = cls(**options)
        try:
            node.boot(wait=wait)
        except BaseException:
            node.close()
            raise
        return node

    def _prepare_dirs(self) -> None:
        base = self.base_dir
        self.mnesia_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").touch()
        (base / "rabbitmq-env.conf").touch()

    # -- paths and addresses -----------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """The node's temp dir (HOME, config, data and logs)."""
        return self._state.base_dir

    @property
    def mnesia_dir(self) -> Path:
        """RABBITMQ_MNESIA_BASE."""
        return self.base_dir / "mnesia"

    @property
    def log_dir(self) -> Path:
        """RABBITMQ_LOG_BASE."""
        return self.base_dir / "log"

    @property
    def console_log(self) -> Path:
        """The server process's stdout and stderr."""
        return self.base_dir / "console.log"

    @property
    def host(self) -> str:
        """The address the node listens on."""
        return LOCALHOST

    @property
    def amqp_url(self) -> str:
        """``amqp://guest:guest@127.0.0.1:<port>/%2F`` (guest may log in from localhost)."""
        return f"amqp://guest:guest@{LOCALHOST}:{self.amqp_port}/%2F"

    @property
    def pid(self) -> int | None:
        """The server script's pid, which is also the node's process group id."""
        proc = self._state.proc
        return proc.pid if proc is not None else None

    @property
    def running(self) -> bool:
        """True while the node's process is alive (booted or still booting)."""
        proc = self._state.proc
        return proc is not None and proc.poll() is None

    def environment(self) -> dict[str, str]:
        """The environment for ``rabbitmq-server`` and ``rabbitmqctl``: all in the temp dir."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        base = self.base_dir
        env.update(
            HOME=str(base),  # a fresh .erlang.cookie shared by the node and rabbitmqctl
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS=LOCALHOST,
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.mnesia_dir),
            RABBITMQ_LOG_BASE=str(self.log_dir),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq"),  # + ".conf"
            RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),  # absent: ignored
            RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        env.setdefault("ERL_EPMD_ADDRESS", LOCALHOST)  # if this node has to start epmd
        return env

    def log_files(self) -> list[Path]:
        """The node's log files and its console output."""
        return [*sorted(self.log_dir.glob("*.log")), self.console_log]

    def log_tail(self, lines: int = 40) -> str:
        """The end of every log file, for error messages."""
        return log_tail(self.log_files(), lines)

    def rss_bytes(self) -> int:
        """Resident memory of the node's processes (0 when not running or not on Linux)."""
        pid = self.pid
        return process_group_rss(pid) if pid is not None and self.running else 0

    # -- lifecycle ---------------------------------------------------------------------------

    def boot(self, *, wait: bool = True) -> RabbitMQNode:
        """Start the node (again: same ports, node name and data) unless it is running.

        With ``wait`` (the default) block until it answers an AMQP handshake, else raise
        :class:`BrokerStartError` with the log tail. Also available as ``node.start()``.
        """
        if self._closed:
            raise BrokerError(f"{self!r} is closed")
        if self.running:
            return self
        # Ports we chose may be taken by someone else before the node binds them: retry.
        attempts = 3 if self._choose_ports and not self._booted_once else 1
        for attempt in range(1, attempts + 1):
            self._spawn()
            if not wait:
                return self
            try:
                self.wait_until_ready()
            except BrokerStartError:
                port_clash = "eaddrinuse" in self.log_tail(200).lower()
                self._terminate(5.0)
                if attempt < attempts and port_clash:
                    self.amqp_port = free_port()
                    self.dist_port = free_port(exclude={self.amqp_port})
                    continue
                raise
            break
        return self

    def _spawn(self) -> None:
        server = self.bin_dir / "rabbitmq-server"
        if not os.access(server, os.X_OK):
            raise BrokerError(
                f"{server} not found: install rabbitmq-server or set ISC_TEST_AMQP_URL"
            )
        console: IO[bytes]
        self.spawned_at = time.time()
        self._spawned_monotonic = time.monotonic()
        with open(self.console_log, "ab") as console:
            self._state.proc = subprocess.Popen(
                [str(server)],
                env=self.environment(),
                cwd=str(self.base_dir),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() can signal all of it
            )

    def wait_until_ready(self, timeout: float | None = None) -> float:
        """Block until the node answers an AMQP handshake; return and record the boot time.

        The boot time counts from the spawn, so it includes any time before this call.
        """
        proc = self._state.proc
        if proc is None:
            raise BrokerError(f"{self!r} was not started")
        wait_for_broker(
            self.amqp_url,
            self.boot_timeout if timeout is None else timeout,
            process_alive=lambda: proc.poll() is None,
            describe_logs=lambda: f"node {self.nodename} in {self.base_dir}:\n{self.log_tail()}",
        )
        self.boot_seconds = time.monotonic() - self._spawned_monotonic
        self._booted_once = True
        return self.boot_seconds

    def stop(self, timeout: float | None = None, *, use_rabbitmqctl: bool = False) -> None:
        """Stop the node cleanly, bounded by ``timeout`` (default ``stop_timeout``) seconds.

        By default send SIGTERM to the server script, which RabbitMQ treats as a clean
        shutdown (about 1.1 s here). ``use_rabbitmqctl`` runs ``rabbitmqctl -n <node> stop``
        first instead (about 2 s: the CLI starts an Erlang VM of its own). Either way a node
        still alive near the deadline gets SIGKILL, with its whole process group. The ports,
        node name and data directory stay reserved for a later :meth:`start`.
        """
        proc = self._state.proc
        if proc is None:
            return
        deadline = Deadline(self.stop_timeout if timeout is None else timeout)
        if use_rabbitmqctl and proc.poll() is None:
            ctl = self.bin_dir / "rabbitmqctl"
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    [str(ctl), "-n", self.nodename, "stop"],
                    env=self.environment(),
                    cwd=str(self.base_dir),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=max(1.0, deadline.remaining() * 0.6),
                    check=False,
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=deadline.remaining() / 2)
        self._terminate(max(0.5, deadline.remaining()))

    def _terminate(self, timeout: float) -> None:
        """SIGTERM the server script, then SIGKILL the group if it outlives ``timeout``."""
        proc = self._state.proc
        if proc is None:
            return
        if proc.poll() is None:
            # The server script traps SIGTERM and stops the Erlang VM gracefully.
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        # SIGKILL whatever is left (a VM that ignored SIGTERM) and wait until it is gone.
        self._state.kill_all()

    def close(self, *, graceful: bool = False) -> None:
        """Stop the node and delete its temp dir (if this object created it). Idempotent.

        The data is about to be deleted, so by default the node is killed outright
        (SIGKILL to its process group, a few ms); ``graceful`` stops it with :meth:`stop`.
        """
        if self._closed:
            return
        try:
            if graceful:
                self.stop()
        finally:
            self._closed = True
            self._state.emergency_cleanup()
            self._finalizer.detach()

    def __enter__(self) -> RabbitMQNode:
        if not self.running:
            self.boot()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.running else "stopped"
        return f"<RabbitMQNode {self.nodename} amqp={LOCALHOST}:{self.amqp_port} {state}>"


_SCRIPTS = ("rabbitmq-server", "rabbitmqctl")


class RabbitMQCluster:
    """Throwaway :class:`RabbitMQNode` members joined into one RabbitMQ cluster (3 by default).

    Every member gets the same Erlang cookie (written into each temp dir, which is the
    member's ``HOME``); all boot at once, then each member after the first runs ``rabbitmqctl
    stop_app``, ``join_cluster <first member>`` and ``start_app``. Members may be stopped and
    started again (same ports and data: a restarted member rejoins by itself)::

        with RabbitMQCluster.launch() as cluster:
            client = Client(cluster.amqp_urls)
            cluster.members[0].stop()        # a member goes...
            cluster.members[0].start()       # ...and comes back
    """

    def __init__(self, size: int = 3, **options: Any) -> None:
        if size < 1:
            raise ValueError(f"a cluster needs at least one member, got {size}")
        self.members: list[RabbitMQNode] = []
        try:
            for _ in range(size):
                used = {p for m in self.members for p in (m.amqp_port, m.dist_port)}
                amqp = free_port(exclude=used)
                dist = free_port(exclude=used | {amqp})
                self.members.append(RabbitMQNode(amqp_port=amqp, dist_port=dist, **options))
        except BaseException:
            self.close()
            raise
        cookie = uuid.uuid4().hex.upper()
        for member in self.members:
            path = member.base_dir / ".erlang.cookie"
            path.write_text(cookie)
            path.chmod(0o400)
        #: Seconds from the first spawn until every member had joined and answered AMQP.
        self.boot_seconds: float | None = None

    @classmethod
    def launch(cls, size: int = 3, **options: Any) -> RabbitMQCluster:
        """Create a cluster of ``size`` members and boot it; close it on failure."""
        cluster = cls(size, **options)
        try:
            cluster.boot()
        except BaseException:
            cluster.close()
            raise
        return cluster

    @property
    def amqp_urls(self) -> list[str]:
        """Every member's AMQP URL, in member order."""
        return [member.amqp_url for member in self.members]

    def boot(self) -> RabbitMQCluster:
        """Boot every member at once, then join the others to the first one."""
        started = time.monotonic()
        for member in self.members:
            member.boot(wait=False)
        for member in self.members:
            member.wait_until_ready()
        first = self.members[0].nodename
        for member in self.members[1:]:
            self.ctl(member, "stop_app")
            self.ctl(member, "join_cluster", first)
            self.ctl(member, "start_app")
            member.wait_until_ready()
        self.boot_seconds = time.monotonic() - started
        return self

    def ctl(self, member: RabbitMQNode, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n <member> ARGS`` and return its output (raise on failure)."""
        done = subprocess.run(
            [str(member.bin_dir / "rabbitmqctl"), "-n", member.nodename, *args],
            env=member.environment(),
            cwd=str(member.base_dir),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise BrokerError(
                f"rabbitmqctl -n {member.nodename} {' '.join(args)} failed "
                f"({done.returncode}): {done.stdout}{done.stderr}"
            )
        return done.stdout

    def member_named(self, nodename: str) -> RabbitMQNode:
        """The member whose Erlang node name is ``nodename``."""
        for member in self.members:
            if member.nodename == nodename:
                return member
        raise KeyError(nodename)

    def rss_bytes(self) -> int:
        """The resident memory of every running member, summed."""
        return sum(member.rss_bytes() for member in self.members)

    def close(self) -> None:
        """Kill every member and delete their temp dirs. Idempotent."""
        for member in self.members:
            member.close()

    def __enter__(self) -> RabbitMQCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
