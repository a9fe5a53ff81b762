"""Check the built wheels the way users install them.

1. ``isc-client`` in a fresh venv pulls pika but never gevent, pytest or isc-testing, and
   imports without them, its testing helpers included; the names that moved to
   isc-testing fail with an install hint.
2. ``isclib`` plus ``isc-testing`` in another fresh venv give every distribution; ``isc``
   is one PEP 420 namespace spread over them (no ``isc/__init__.py`` in any wheel).
3. The install commands the README and the docs show (each ```console block marked
   ``<!-- run by make dist-check -->``) run as shown, in the checkout, with a fresh venv's
   ``pip`` and ``python`` first on PATH, and give isc 2 (not isclib 1.2 from the index).

Usage: python scripts/check_dist.py DIST_DIR
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DISTRIBUTIONS = ["isc_core", "isc_codecs", "isc_client", "isc_server", "isclib", "isc_testing"]
ROOT = Path(__file__).resolve().parent.parent
#: The pages whose marked console blocks are run; a block is marked by the comment line above it.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKED_BLOCK = re.compile(
    r"^<!-- run by make dist-check -->\n```console\n(.*?)^```", re.MULTILINE | re.DOTALL
)

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

#: What ``pip install isclib`` gives: the whole documented API in one ``isc`` namespace.
ISCLIB_PROBE = """
import isc, isc.client, isc.codecs, isc.core, isc.server, isc.server.testing
paths = list(isc.__path__)
assert getattr(isc, '__file__', None) is None, 'isc must be a namespace package'
assert type(isc.__path__).__name__ == '_NamespacePath', type(isc.__path__)
import gevent, pika
print('isclib ok: namespace isc over', len(paths), 'path(s)')
"""
#: With isc-testing installed too: the throwaway node, under its old path as well.
FULL_PROBE = (
    ISCLIB_PROBE
    + """
from isc.client.testing import RabbitMQNode
from isc.testing import RabbitMQNode as SameNode
assert RabbitMQNode is SameNode, 'isc.client.testing re-exports isc.testing'
"""
)


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


def install_commands() -> dict[tuple[str, ...], list[str]]:
    """The commands of each marked console block, and the pages showing them."""
    blocks: dict[tuple[str, ...], list[str]] = {}
    for page in PAGES:
        for match in MARKED_BLOCK.finditer(page.read_text(encoding="utf-8")):
            commands = tuple(
                line[2:].strip() for line in match.group(1).splitlines() if line.startswith("$ ")
            )
            blocks.setdefault(commands, []).append(str(page.relative_to(ROOT)))
    return blocks


def check_install_commands(uv: str, root: Path) -> None:
    """Run each marked block's commands in the checkout, a fresh venv first on PATH."""
    blocks = install_commands()
    if not blocks:
        sys.exit(
            "no console block is marked <!-- run by make dist-check -->: the install "
            "commands of README.md and docs/quickstart.md are not tested"
        )
    version = (ROOT / "packages/isclib/pyproject.toml").read_text(encoding="utf-8")
    expected = re.search(r'^version = "([^"]+)"', version, re.MULTILINE)
    assert expected is not None, "packages/isclib/pyproject.toml has no version"
    for number, (commands, pages) in enumerate(blocks.items()):
        print(f"   the install commands of {', '.join(pages)}, in a fresh venv:", flush=True)
        venv = root / f"docs-install-{number}"
        run(uv, "venv", "--quiet", "--seed", "--python", sys.executable, str(venv))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        for command in commands:
            print(f"   $ {command}", flush=True)
            subprocess.run(["bash", "-c", command], check=True, cwd=ROOT, env=env)
        probe = ISCLIB_PROBE + (
            "from importlib.metadata import version\n"
            f"assert version('isclib') == {expected.group(1)!r}, version('isclib')\n"
        )
        subprocess.run([str(venv / "bin" / "python"), "-c", probe], check=True, cwd=root)


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
        check_install_commands(uv, root)
    print("dist-check ok")


if __name__ == "__main__":
    main()
