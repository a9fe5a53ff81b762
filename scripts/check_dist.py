"""Check the built wheels the way users install them.

1. ``isc-client`` in a fresh venv pulls pika but never gevent, pytest or isc-testing, and
   imports without them, its testing helpers included; the names that moved to
   isc-testing fail with an install hint.
2. ``isclib`` plus ``isc-testing`` in another fresh venv give every distribution; ``isc``
   is one PEP 420 namespace spread over them (no ``isc/__init__.py`` in any wheel).

Usage: python scripts/check_dist.py DIST_DIR
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DISTRIBUTIONS = ["isc_core", "isc_codecs", "isc_client", "isc_server", "isclib", "isc_testing"]

CLIENT_PROBE = """
import importlib.util, sys
import isc.client, isc.client.testing, isc.codecs, isc.core
assert 'gevent' not in sys.modules, 'isc.client imported gevent'
assert 'pytest' not in sys.modules, 'isc.client.testing imported pytest'
assert importlib.util.find_spec('gevent') is None, 'gevent got installed with isc-client'
assert importlib.util.find_spec('pika') is not None, 'pika is missing'
assert importlib.util.find_spec('isc.testing') is None, 'isc-client pulled in isc-testing'
try:
    from isc.client.testing import RabbitMQNode
except ModuleNotFoundError as exc:
    assert 'isc-client[testing]' in str(exc), exc
else:
    raise AssertionError('RabbitMQNode importable without isc-testing')
print('isc-client ok: pika present, gevent and the test machinery (isc-testing) absent')
"""

FULL_PROBE = """
import isc, isc.client, isc.codecs, isc.core, isc.server, isc.server.testing
paths = list(isc.__path__)
assert getattr(isc, '__file__', None) is None, 'isc must be a namespace package'
assert type(isc.__path__).__name__ == '_NamespacePath', type(isc.__path__)
import gevent, pika
from isc.client.testing import RabbitMQNode
from isc.testing import RabbitMQNode as SameNode
assert RabbitMQNode is SameNode, 'isc.client.testing re-exports isc.testing'
print('isclib ok: namespace isc over', len(paths), 'path(s)')
"""


def run(*cmd: str) -> None:
    """Run a command, echoing it, and fail loudly."""
    print("   $", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def check_wheels(dist: Path) -> None:
    """Every distribution has exactly one wheel and none ships ``isc/__init__.py``."""
    for name in DISTRIBUTIONS:
        wheels = sorted(dist.glob(f"{name}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"expected one wheel for {name} in {dist}, found {wheels}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            names = wheel.namelist()
        if "isc/__init__.py" in names:
            sys.exit(f"{wheels[0].name} ships isc/__init__.py: isc must stay a namespace")
        typed = [n for n in names if n.endswith("py.typed")]
        if name != "isclib" and not typed:
            sys.exit(f"{wheels[0].name} has no py.typed")
        print(f"   {wheels[0].name}: {len(names)} files")


def venv_install(uv: str, root: Path, name: str, wheels: list[Path], *extra: str) -> Path:
    """Create a venv under ``root`` and install the given wheel files (deps from PyPI)."""
    venv = root / name
    run(uv, "venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    run(uv, "pip", "install", "--quiet", "--python", str(python), *map(str, wheels), *extra)
    return python


def wheel(dist: Path, name: str) -> Path:
    """The one wheel of distribution ``name`` in ``dist``."""
    return next(dist.glob(f"{name}-*.whl"))


def main() -> None:
    """Build-time checks of the wheels in ``sys.argv[1]``."""
    dist = Path(sys.argv[1]).resolve()
    uv = shutil.which("uv")
    if uv is None:
        sys.exit("uv is needed (make tools installs it)")
    check_wheels(dist)
    with tempfile.TemporaryDirectory(prefix="isc-dist-") as tmp:
        root = Path(tmp)
        env = dict(os.environ)
        # Explicit wheel files, so a same-named project on PyPI can never be picked instead.
        client = [wheel(dist, n) for n in ("isc_core", "isc_codecs", "isc_client")]
        python = venv_install(uv, root, "client", client)
        subprocess.run([str(python), "-c", CLIENT_PROBE], check=True, env=env, cwd=tmp)
        everything = [wheel(dist, n) for n in DISTRIBUTIONS]
        python = venv_install(uv, root, "full", everything, "msgpack")
        subprocess.run([str(python), "-c", FULL_PROBE], check=True, env=env, cwd=tmp)
    print("dist-check ok")


if __name__ == "__main__":
    main()
