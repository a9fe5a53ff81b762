"""Run a hatch test matrix one environment at a time and report every result.

``hatch run`` stops at the first failing environment; this script runs them all, prints a
table and exits non-zero if any failed. A Python that is not installed here is skipped with a
message, except under CI (``CI`` set), where every Python of the matrix is required.

Usage: python scripts/run_matrix.py unit|integration [--python 3.12 ...] [--codec json ...]
       [-- extra pytest arguments]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
CODECS = ["pickle", "json", "typedjson", "msgpack"]


def python_available(version: str) -> bool:
    """True if ``python<version>`` runs (a pyenv shim may exist yet refuse to run)."""
    exe = shutil.which(f"python{version}")
    if exe is None:
        return False
    probe = subprocess.run(
        [exe, "-c", "import sys; print(sys.version)"], capture_output=True, text=True
    )
    return probe.returncode == 0


def main() -> int:
    """Parse arguments, run every selected environment, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=["unit", "integration"])
    parser.add_argument("--python", action="append", dest="pythons")
    parser.add_argument("--codec", action="append", dest="codecs")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()

    pythons = args.pythons or PYTHONS
    codecs = args.codecs or CODECS if args.suite == "integration" else [None]
    in_ci = bool(os.environ.get("CI"))
    hatch = shutil.which("hatch") or "hatch"

    results: list[tuple[str, str, float]] = []
    for py in pythons:
        if not python_available(py):
            status = "MISSING" if in_ci else "skipped"
            print(f"--- python{py} is not installed here: {status}", flush=True)
            for codec in codecs:
                results.append((env_label(args.suite, py, codec), status, 0.0))
            continue
        for codec in codecs:
            label = env_label(args.suite, py, codec)
            selector = [f"+py={py}"] + ([f"+codec={codec}"] if codec else [])
            cmd = [hatch, "run", *selector, f"{args.suite}:test", *args.pytest_args]
            print(f"--- {label}: {' '.join(cmd[1:])}", flush=True)
            started = time.monotonic()
            code = subprocess.call(cmd)
            elapsed = time.monotonic() - started
            results.append((label, "ok" if code == 0 else f"FAILED ({code})", elapsed))

    print(f"\n{args.suite} matrix summary")
    for label, status, elapsed in results:
        print(f"  {label:<32} {status:<12} {elapsed:6.1f}s")
    bad = [r for r in results if r[1] not in ("ok", "skipped")]
    skipped = [r for r in results if r[1] == "skipped"]
    if skipped:
        print(f"  {len(skipped)} environment(s) skipped: their Python is not installed here.")
    if bad:
        print(f"  {len(bad)} environment(s) failed.")
        return 1
    print(f"  {len(results) - len(skipped)} environment(s) passed.")
    return 0


def env_label(suite: str, py: str, codec: str | None) -> str:
    """The hatch environment name, e.g. ``integration.py3.12-json``."""
    return f"{suite}.py{py}" + (f"-{codec}" if codec else "")


if __name__ == "__main__":
    sys.exit(main())
