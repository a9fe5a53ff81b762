"""Run hatch test matrices one environment at a time and report every result.

``hatch run`` stops at the first failing environment; this script runs them all, prints a
table and exits non-zero if any failed. A Python that is not installed here is skipped with a
message, except under CI (``CI`` set), where every Python of the matrix is required.

Suites: ``unit`` (one env per Python), ``integration`` (one env per Python running every
codec, ``codec=all``; ``--codec json`` picks single-codec envs instead) and ``stock`` (the one
stock-pika env). The broker suites share one throwaway RabbitMQ node for the whole run
(``python -m isc.testing`` in the ``broker`` env, handed over as ``ISC_TEST_AMQP_URL``) unless
``ISC_TEST_AMQP_URL`` is already set or ``--broker-per-env`` is given; the fault tests still
boot their private nodes.

``--jobs N`` runs up to N environments at once (after creating them one at a time): each one's
output is kept in a file and printed whole when it ends, so the log still reads one
environment after another.

Usage: python scripts/run_matrix.py SUITE [SUITE ...] [--python 3.12 ...] [--codec json ...]
       [--broker-per-env] [--jobs N] [-- extra pytest arguments]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
CODECS = ["all", "pickle", "json", "typedjson", "msgpack"]
SUITES = ["unit", "integration", "stock"]
BROKER_SUITES = {"integration", "stock"}
#: What ``python -m isc.testing`` prints once its node answers.
BROKER_READY = "ISC_TEST_AMQP_URL="
ENV_AMQP_URL = "ISC_TEST_AMQP_URL"


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
    argv = sys.argv[1:]
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="+", choices=SUITES, metavar="SUITE")
    parser.add_argument("--python", action="append", dest="pythons")
    parser.add_argument("--codec", action="append", dest="codecs", choices=CODECS)
    parser.add_argument(
        "--broker-per-env",
        action="store_true",
        help="let each environment start its own broker instead of sharing one",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run up to N environments at once (default 1)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    in_ci = bool(os.environ.get("CI"))
    hatch = shutil.which("hatch") or "hatch"
    share = (
        bool(BROKER_SUITES & set(args.suites))
        and not args.broker_per_env
        and not os.environ.get(ENV_AMQP_URL)
    )
    results: list[tuple[str, str, float]] = []
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if share:
            try:
                env[ENV_AMQP_URL] = stack.enter_context(shared_broker(hatch))
            except RuntimeError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                return 1
        jobs: list[Job] = []
        for suite in args.suites:
            rows, suite_jobs = plan_suite(suite, args, pytest_args, hatch, in_ci)
            results += rows
            jobs += suite_jobs
        results += run_jobs(jobs, env, args.jobs, hatch)

    print(f"\n{' + '.join(args.suites)} summary")
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


@dataclass(frozen=True)
class Job:
    """One environment to run: its label, hatch environment name and command."""

    label: str
    env_name: str
    cmd: list[str]


def plan_suite(
    suite: str,
    args: argparse.Namespace,
    pytest_args: list[str],
    hatch: str,
    in_ci: bool,
) -> tuple[list[tuple[str, str, float]], list[Job]]:
    """The environments of ``suite`` to run, and the result rows of those skipped."""
    if suite == "stock":
        return [], [Job("stock", "stock", [hatch, "run", "stock:test", *pytest_args])]
    pythons = args.pythons or PYTHONS
    codecs: list[str | None] = [None]
    if suite == "integration":
        codecs = list(args.codecs or ["all"])
    skipped: list[tuple[str, str, float]] = []
    jobs: list[Job] = []
    for py in pythons:
        if not python_available(py):
            status = "MISSING" if in_ci else "skipped"
            print(f"--- python{py} is not installed here: {status}", flush=True)
            for codec in codecs:
                skipped.append((env_label(suite, py, codec), status, 0.0))
            continue
        for codec in codecs:
            selector = [f"+py={py}"] + ([f"+codec={codec}"] if codec else [])
            cmd = [hatch, "run", *selector, f"{suite}:test", *pytest_args]
            label = env_label(suite, py, codec)
            jobs.append(Job(label, label, cmd))
    return skipped, jobs


def run_jobs(
    jobs: list[Job], env: dict[str, str], parallel: int, hatch: str
) -> list[tuple[str, str, float]]:
    """Run ``jobs``, ``parallel`` at a time; return (label, status, seconds) rows in order."""
    if parallel == 1 or len(jobs) < 2:
        return [run_env(job.label, job.cmd, env) for job in jobs]
    # Create the environments one at a time first: hatch and uv then only run tests in them.
    for job in jobs:
        print(f"--- creating {job.env_name}", flush=True)
        subprocess.call([hatch, "env", "create", job.env_name], env=env)
    print(f"--- running {len(jobs)} environments, {parallel} at a time", flush=True)
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda job: run_env_captured(job, env), jobs))


def run_env(label: str, cmd: list[str], env: dict[str, str]) -> tuple[str, str, float]:
    """Run one environment's command; return (label, status, seconds)."""
    shared = " (shared broker)" if env.get(ENV_AMQP_URL) else ""
    print(f"--- {label}: {' '.join(cmd[1:])}{shared}", flush=True)
    started = time.monotonic()
    code = subprocess.call(cmd, env=env)
    elapsed = time.monotonic() - started
    return (label, "ok" if code == 0 else f"FAILED ({code})", elapsed)


def run_env_captured(job: Job, env: dict[str, str]) -> tuple[str, str, float]:
    """Run one environment with its output in a file; print it whole when it ends."""
    shared = " (shared broker)" if env.get(ENV_AMQP_URL) else ""
    print(f"--- {job.label}: started: {' '.join(job.cmd[1:])}{shared}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryFile() as output:
        code = subprocess.call(job.cmd, env=env, stdout=output, stderr=subprocess.STDOUT)
        elapsed = time.monotonic() - started
        output.seek(0)
        text = output.read().decode(errors="replace")
    status = "ok" if code == 0 else f"FAILED ({code})"
    print(f"--- {job.label}: {status} after {elapsed:.1f}s; its output:\n{text}", flush=True)
    return (job.label, status, elapsed)


@contextlib.contextmanager
def shared_broker(hatch: str) -> Iterator[str]:
    """Boot one throwaway RabbitMQ node for the whole run; yield its URL; stop it.

    ``python -m isc.testing`` (in the ``broker`` env) prints the URL once the node answers
    an AMQP handshake and deletes the node when its stdin closes, so the node also goes away
    if this script dies.
    """
    cmd = [hatch, "run", "broker:python", "-m", "isc.testing"]
    print(f"--- one RabbitMQ node for the whole run: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdin is not None
    url = None
    for line in proc.stdout:
        if line.startswith(BROKER_READY):
            url = line[len(BROKER_READY) :].strip()
            break
        print(line, end="", flush=True)
    if url is None:
        proc.wait()
        raise RuntimeError(f"the shared RabbitMQ node did not start (exit code {proc.returncode})")
    print(f"--- shared broker ready after {time.monotonic() - started:.1f}s: {url}", flush=True)
    try:
        yield url
    finally:
        proc.stdin.close()  # python -m isc.testing stops and deletes the node
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def env_label(suite: str, py: str, codec: str | None) -> str:
    """The hatch environment name, e.g. ``integration.py3.12-json``."""
    return f"{suite}.py{py}" + (f"-{codec}" if codec else "")


if __name__ == "__main__":
    sys.exit(main())
