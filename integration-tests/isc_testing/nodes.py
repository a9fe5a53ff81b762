"""Start isc nodes (or any script) as subprocesses and wait until they say they are ready.

Nodes run in their own process because ``isc.server`` applies gevent's monkey patching, which
must not happen inside the pytest process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from isc.client import Client, ServiceNotFoundError, TimeoutException

from .waiting import Deadline

__all__ = ["NodeProcess", "SERVICES_DIR", "service_answers"]

#: Where the suite's service modules live (importable by node subprocesses).
SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


class NodeProcess:
    """A subprocess whose output is collected; ready once a given line appears."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        ready_line: str = "isc-node-ready",
        ready_probe: Callable[[], bool] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.argv = list(argv)
        self.ready_line = ready_line
        #: Alternatively, ready once this returns True (for programs that print nothing).
        self.ready_probe = ready_probe
        self.timeout = timeout
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @classmethod
    def serve(
        cls, url: str, exchange: str, *services: str, extra: Sequence[str] = ()
    ) -> NodeProcess:
        """A node hosting ``services`` (``module:Class`` from integration-tests/services)."""
        return cls([sys.executable, "-m", "isc_testing.serve", url, exchange, *services, *extra])

    def start(self) -> NodeProcess:
        """Start the process and wait for its ready line (raising with its output if it dies)."""
        env = dict(os.environ)
        paths = [str(SERVICES_DIR), str(SERVICES_DIR.parent)]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(":")
        env["PYTHONUNBUFFERED"] = "1"
        self._proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = Deadline(self.timeout)
        while not self._ready.wait(0.05):
            if self.ready_probe is not None and self.ready_probe():
                break
            if self._proc.poll() is not None or deadline.expired:
                self.kill()
                raise RuntimeError(
                    f"{' '.join(self.argv[:4])}... did not get ready "
                    f"(exit code {self._proc.returncode}); output:\n{self.output}"
                )
        return self

    def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.ready_line in line:
                self._ready.set()

    @property
    def output(self) -> str:
        """Everything the process printed so far."""
        return "\n".join(self.lines)

    @property
    def pid(self) -> int:
        """The process id."""
        assert self._proc is not None
        return self._proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit code (killing it after ``timeout``)."""
        if self._proc is None:
            return 0
        if self._proc.poll() is None:
            self._proc.send_signal(sig)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_pipe()
        return self._proc.returncode

    def _close_pipe(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()

    def kill(self) -> None:
        """SIGKILL the process group."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(10)
            self._close_pipe()

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def service_answers(url: str, exchange: str, *services: str) -> Callable[[], bool]:
    """A readiness probe: True once every one of ``services`` answers ``_inspect``."""

    def probe() -> bool:
        with Client(url, exchange=exchange, invoke_timeout=2) as client:
            try:
                for service in services:
                    client.invoke(service, "_inspect")
            except (ServiceNotFoundError, TimeoutException):
                return False
        return True

    return probe
