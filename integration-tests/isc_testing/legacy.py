"""A side virtualenv with the original isclib 1.2, to run old clients and nodes against isc 2.

isclib 1.2 (PyPI ``isclib==1.2``, GPLv3) is only installed and run, never copied. It installs
the top-level package ``isc``, which would shadow isc 2's namespace package, so it lives in a
virtualenv of its own and its scripts (``integration-tests/legacy/``) run there, isolated
(``python -I``: no PYTHONPATH, no user site, no script-directory surprises).

:func:`ensure_legacy_env` builds the virtualenv once per machine under
``<repo>/.tools/cache/isclib-1.2-py<X.Y>/`` and reuses it afterwards: a marker file written
after a successful install and import check says it is complete. An exclusive ``flock`` on a
lock file beside it serialises builders, so xdist workers (or parallel matrix runs) that ask at
once build it only once; the others wait, then find the marker.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

__all__ = [
    "LEGACY_DIR",
    "LEGACY_REQUIREMENTS",
    "LegacyEnv",
    "LegacyEnvError",
    "ensure_legacy_env",
    "legacy_interpreter",
    "run_legacy_script",
]

#: What the side virtualenv gets. isclib 1.2 imports ``six`` without declaring it (it used to
#: come with python-dateutil, whose recent releases dropped it), hence the explicit ``six``.
LEGACY_REQUIREMENTS: tuple[str, ...] = ("isclib==1.2", "six")
#: The interpreter version isclib 1.2 was verified on; preferred when available.
PREFERRED_PYTHON = "3.11"
#: The scripts that run inside the side virtualenv.
LEGACY_DIR = Path(__file__).resolve().parent.parent / "legacy"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_CACHE = _REPO_ROOT / ".tools" / "cache"
_MARKER = "isc-legacy-env.json"
#: Bounds on the slow steps (a cold install downloads ~1 MB and builds one sdist).
_INSTALL_TIMEOUT = 300.0
_LOCK_TIMEOUT = 420.0


class LegacyEnvError(RuntimeError):
    """The isclib 1.2 virtualenv could not be created (the message says why, with output)."""


class LegacyEnv:
    """A ready isclib 1.2 virtualenv: its directory, interpreter and installed versions."""

    def __init__(self, path: Path, versions: Mapping[str, str], build_seconds: float) -> None:
        self.path = path
        self.versions = dict(versions)
        #: Seconds it took to build; 0.0 when an existing virtualenv was reused.
        self.build_seconds = build_seconds

    @property
    def python(self) -> Path:
        """The virtualenv's interpreter."""
        return self.path / "bin" / "python"

    def command(self, script: str | Path, *args: str) -> list[str]:
        """argv running ``script`` (a path, or a file name in ``integration-tests/legacy``)."""
        path = Path(script)
        if not path.is_absolute():
            path = LEGACY_DIR / path
        return [str(self.python), "-I", "-u", str(path), *args]

    def __repr__(self) -> str:
        pins = ", ".join(f"{k}=={v}" for k, v in sorted(self.versions.items()))
        return f"<LegacyEnv {self.path} ({pins})>"


def legacy_interpreter() -> tuple[str, str]:
    """The base interpreter for the virtualenv and its ``X.Y`` version.

    Python 3.11 (``python3.11`` on PATH, or the running interpreter if it is 3.11); any other
    running interpreter only when no 3.11 is installed.
    """
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if current == PREFERRED_PYTHON:
        return sys.executable, current
    found = shutil.which(f"python{PREFERRED_PYTHON}")
    if found is not None:
        probe = subprocess.run(
            [found, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode == 0 and probe.stdout.strip() == PREFERRED_PYTHON:
            return found, PREFERRED_PYTHON
    return sys.executable, current


def _find_uv() -> str | None:
    repo_uv = _REPO_ROOT / ".tools" / "bin" / "uv"
    if repo_uv.is_file() and os.access(repo_uv, os.X_OK):
        return str(repo_uv)
    return shutil.which("uv")


def _clean_env() -> dict[str, str]:
    """The environment for installer and legacy processes: no trace of the test's own venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
        and not key.startswith("UV_PROJECT")
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"  # the interpreter comes from the machine only
    return env


@contextlib.contextmanager
def _locked(lock_path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_path`` (waiting at most ``timeout`` seconds)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LegacyEnvError(
                        f"another process held {lock_path} for more than {timeout:.0f}s "
                        "while building the isclib 1.2 virtualenv"
                    ) from None
                time.sleep(0.2)  # polling a lock another process holds; bounded above
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_marker(path: Path) -> dict[str, str] | None:
    """The installed versions if ``path`` holds a complete virtualenv for our requirements."""
    try:
        data = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("requirements") != list(LEGACY_REQUIREMENTS):
        return None
    if not (path / "bin" / "python").exists():
        return None
    versions = data.get("versions")
    return dict(versions) if isinstance(versions, dict) else None


def _run(argv: Sequence[str], what: str, log: list[str]) -> str:
    """Run an installer step; return its stdout, or raise LegacyEnvError with the log."""
    log.append("$ " + " ".join(argv))
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=_INSTALL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise LegacyEnvError(
            f"{what} took more than {_INSTALL_TIMEOUT:.0f}s (is PyPI reachable?)\n" + "\n".join(log)
        ) from exc
    log.append((done.stdout + done.stderr).strip())
    if done.returncode != 0:
        raise LegacyEnvError(
            f"{what} failed (exit code {done.returncode}); is PyPI reachable?\n"
            + "\n".join(log)[-4000:]
        )
    return done.stdout


_PROBE = (
    "import json, importlib.metadata as m, isc.client, isc.server, isc.codecs, kombu;"
    "print(json.dumps({d: m.version(d) for d in "
    "('isclib', 'kombu', 'amqp', 'six', 'python-dateutil')}))"
)


def _build(path: Path, base_python: str) -> dict[str, str]:
    """Create the virtualenv at ``path`` (replacing any partial one); return its versions."""
    if path.exists():
        shutil.rmtree(path)
    log: list[str] = []
    uv = _find_uv()
    python = path / "bin" / "python"
    if uv is not None:
        _run([uv, "venv", "--quiet", "--python", base_python, str(path)], "uv venv", log)
        _run(
            [uv, "pip", "install", "--python", str(python), *LEGACY_REQUIREMENTS],
            f"installing {' '.join(LEGACY_REQUIREMENTS)} with uv",
            log,
        )
    else:
        _run([base_python, "-m", "venv", str(path)], "python -m venv", log)
        _run(
            [str(python), "-m", "pip", "install", "--quiet", *LEGACY_REQUIREMENTS],
            f"installing {' '.join(LEGACY_REQUIREMENTS)} with pip",
            log,
        )
    out = _run([str(python), "-I", "-c", _PROBE], "importing isclib 1.2 in its virtualenv", log)
    versions: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return versions


def ensure_legacy_env(cache_dir: Path | None = None) -> LegacyEnv:
    """The isclib 1.2 virtualenv, built on first use (safe to call from many processes).

    Raises :class:`LegacyEnvError` when it cannot be built (typically: PyPI unreachable).
    """
    base_python, version = legacy_interpreter()
    root = cache_dir if cache_dir is not None else _DEFAULT_CACHE
    path = root / f"isclib-1.2-py{version}"
    versions = _read_marker(path)
    if versions is not None:
        return LegacyEnv(path, versions, 0.0)
    with _locked(root / f"isclib-1.2-py{version}.lock", _LOCK_TIMEOUT):
        versions = _read_marker(path)  # built by another process while we waited
        if versions is not None:
            return LegacyEnv(path, versions, 0.0)
        started = time.monotonic()
        try:
            versions = _build(path, base_python)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        marker = {"requirements": list(LEGACY_REQUIREMENTS), "versions": versions}
        tmp = path / (_MARKER + ".tmp")
        tmp.write_text(json.dumps(marker, indent=2) + "\n")
        tmp.replace(path / _MARKER)
        return LegacyEnv(path, versions, time.monotonic() - started)


def run_legacy_script(
    env: LegacyEnv, script: str | Path, *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a script of ``integration-tests/legacy`` in the virtualenv and wait for it.

    A run that hangs is tried once more (and said on stderr): isclib 1.2's client shares one
    kombu connection between its consumer and publisher threads, which is not thread-safe,
    and seen here once under heavy load it stalled for good right after connecting, before
    its first call reached any node. A second hang fails the test as the first would have.
    """
    try:
        return _run_legacy(env, script, args, timeout)
    except subprocess.TimeoutExpired as exc:
        print(
            f"legacy {script} hung for {timeout:g}s (stderr: {exc.stderr!r}); trying once more",
            file=sys.stderr,
        )
        return _run_legacy(env, script, args, timeout)


def _run_legacy(
    env: LegacyEnv, script: str | Path, args: Sequence[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        env.command(script, *args),
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
