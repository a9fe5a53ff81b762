"""Every shell command shown in the documentation runs, and prints what the page shows.

Each ```console block of ``docs/*.md`` is a shell session: a line starting with ``$ `` is a
command, the lines after it (up to the next ``$ `` line or the end of the block) are its
expected output, stdout and stderr together. The blocks of one page run in order, as one
session, against the suite's broker on the test's exchange (``ISC_URL``/``ISC_EXCHANGE``;
``--url`` and ``--exchange`` in a command are replaced by them, and the broker URL and
exchange name in the output are put back to the page's, so the page shows what a user sees).

* ``isc ...`` runs the ``isc`` console script (``python -m isc.client.cli`` without it);
  ``python SCRIPT`` runs the interpreter of this test on SCRIPT through
  ``isc_testing/run_example.py``, which points the program's clients and nodes at the suite's
  broker (the pages' programs carry no test plumbing). Both run in the page's example
  directory (:data:`WORKDIRS`).
* ``isc run ...`` and a ``python SCRIPT`` of :data:`SERVERS` start a node in the background
  (as if in another terminal): the output shown must be what it printed once ready, and it
  must exit with 0 on SIGTERM when the page ends.
* ``echo $?`` prints the exit code of the command before it.
* A command exits with 0, unless its output starts with ``error:``: then it must fail.
* Output matching (the convention is documented in docs/development.md): ``...`` matches any
  text within a line, a line of only ``...`` any number of lines, ``~WORD`` any word (a
  timing, a count, a pid, a host), and a run of spaces inside a line any run of spaces (table
  columns widen with their contents). Everything else is compared exactly.
* A block preceded by ``<!-- not run: REASON -->`` is not run (installing packages, a broker
  elsewhere); each of its commands is reported as a skipped test with the reason. A block
  preceded by ``<!-- run by make dist-check -->`` (installing isc from the checkout) is
  skipped here too: ``scripts/check_dist.py`` runs it, in a fresh venv. A ``$``
  line outside a console block fails :func:`test_every_command_is_run_or_skipped`, and a
  command that is neither ``isc``, ``python`` nor ``echo $?`` fails its page's test.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from isc.core import DEFAULT_EXCHANGE, DEFAULT_URL, redact_url
from isc_testing.nodes import NodeProcess, service_answers

pytestmark = [pytest.mark.codec_independent, pytest.mark.tooling]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: Where each page's commands run (the directory its example files are in).
WORKDIRS = {
    "cli.md": DOCS / "examples" / "cli",
    "guide.md": DOCS / "examples" / "guide",
    "quickstart.md": DOCS / "examples" / "quickstart",
}
#: ``python SCRIPT`` commands that start a node, and the services that answer once it is ready.
SERVERS = {"server.py": ("example",), "users_node.py": ("users",)}
#: Every foreground command is bounded: a hung one fails the test instead of the run.
COMMAND_TIMEOUT = 60.0
#: Runs a page's ``python SCRIPT`` against the suite's broker (see its docstring).
RUN_EXAMPLE = ROOT / "integration-tests" / "isc_testing" / "run_example.py"
#: The line ``isc run`` logs once its node consumes its queues.
RUN_READY_LINE = "node ready; stop it with SIGTERM or Ctrl-C"

BLOCK = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(\S.*?)\s*-->\s*$")
#: Install commands: ``make dist-check`` runs them in a fresh venv (scripts/check_dist.py).
RUN_BY_DIST_CHECK = re.compile(r"<!-- run by make dist-check -->\s*$")


@dataclass
class Command:
    """One ``$`` line of a page, with the output shown under it."""

    page: str
    line: int
    text: str
    expected: list[str] = field(default_factory=list)
    skip_reason: str | None = None

    @property
    def where(self) -> str:
        """``docs/cli.md:9``, for messages."""
        return f"docs/{self.page}:{self.line}"


def parse_page(page: Path) -> list[Command]:
    """The commands of every console block of ``page``, in order."""
    text = page.read_text()
    commands: list[Command] = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        not_run = NOT_RUN.search(before)
        reason = not_run.group(1) if not_run else None
        if RUN_BY_DIST_CHECK.search(before):
            reason = "installs packages; make dist-check runs it (scripts/check_dist.py)"
        first_line = text.count("\n", 0, match.start(1)) + 1
        current: Command | None = None
        for offset, line in enumerate(match.group(1).splitlines()):
            if line.startswith("$ "):
                current = Command(
                    page.name,
                    first_line + offset,
                    line[2:].strip(),
                    skip_reason=reason,
                )
                commands.append(current)
            elif current is not None:
                current.expected.append(line.rstrip())
    return commands


def all_commands() -> list[Command]:
    """The commands of every page of docs/."""
    return [command for page in sorted(DOCS.glob("*.md")) for command in parse_page(page)]


# -- matching the output ----------------------------------------------------------------------


def expected_pattern(expected: list[str]) -> re.Pattern[str]:
    """A regex for the whole output: the page's lines with its wildcards."""
    parts: list[str] = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        indent = line[: len(line) - len(line.lstrip(" "))]
        pieces = re.split(r"(\.\.\.|~\S+| +)", line[len(indent) :])
        regex = re.escape(indent) + "".join(
            ".*?"
            if piece == "..."
            else r"\S+"
            if piece.startswith("~")
            else " +"
            if piece.startswith(" ")
            else re.escape(piece)
            for piece in pieces
        )
        parts.append(regex + r"\n")
    return re.compile("".join(parts))


def normalised(output: str) -> str:
    """``output`` with trailing spaces and blank trailing lines removed, one newline per line."""
    lines = [line.rstrip() for line in output.rstrip().splitlines()]
    return "".join(line + "\n" for line in lines)


def assert_output(command: Command, output: str) -> None:
    """The output matches what the page shows under the command."""
    actual = normalised(output)
    if not expected_pattern(command.expected).fullmatch(actual):
        shown = "".join(line + "\n" for line in command.expected)
        raise AssertionError(
            f"{command.where}: `$ {command.text}` printed\n{actual}--- the page shows\n{shown}"
        )


# -- running the commands ---------------------------------------------------------------------


def isc_argv() -> list[str]:
    """The ``isc`` console script of this interpreter's environment, else ``python -m``."""
    script = shutil.which("isc", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "isc.client.cli"]


class Session:
    """One page's shell: runs its commands in order; remembers nodes and the last exit code."""

    def __init__(self, page: str, url: str, exchange: str) -> None:
        self.workdir = WORKDIRS.get(page, DOCS / "examples")
        self.url = url
        self.exchange = exchange
        self.last_code: int | None = None
        self.background: list[tuple[Command, NodeProcess]] = []
        self.ran = 0

    def run(self, command: Command) -> None:
        """Run ``command`` and check its output and exit code."""
        argv = shlex.split(command.text, comments=True)
        self.ran += 1
        if argv == ["echo", "$?"]:
            assert self.last_code is not None, f"{command.where}: `echo $?` before any command"
            assert_output(command, f"{self.last_code}\n")
            return
        argv, shown_url, shown_exchange = self.rewrite(command, argv)
        if argv[:2] == ["isc", "run"] or (argv[0] == "python" and argv[1] in SERVERS):
            self.start(command, argv, shown_url, shown_exchange)
            return
        done = subprocess.run(
            self.executable(command, argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.workdir,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        self.last_code = done.returncode
        assert_output(command, self.as_shown(done.stdout, shown_url, shown_exchange))
        failing = bool(command.expected) and command.expected[0].startswith("error:")
        if failing:
            assert done.returncode != 0, f"{command.where}: `$ {command.text}` exited with 0"
        else:
            assert done.returncode == 0, (
                f"{command.where}: `$ {command.text}` exited with {done.returncode}:\n{done.stdout}"
            )

    def rewrite(self, command: Command, argv: list[str]) -> tuple[list[str], str, str]:
        """``argv`` on the suite's broker and exchange; the URL and exchange the page shows."""
        shown_url, shown_exchange = DEFAULT_URL, DEFAULT_EXCHANGE
        argv = list(argv)
        for index, arg in enumerate(argv[:-1]):
            if arg == "--url":
                shown_url = argv[index + 1]
                host = urlsplit(shown_url).hostname
                assert host == "127.0.0.1", (
                    f"{command.where}: a broker on {host} cannot be reached from the tests: "
                    "mark the block <!-- not run: REASON -->"
                )
                argv[index + 1] = self.url
            elif arg == "--exchange":
                shown_exchange = argv[index + 1]
                argv[index + 1] = self.exchange
        return argv, shown_url, shown_exchange

    def executable(self, command: Command, argv: list[str]) -> list[str]:
        """The real argv of a page's command (``isc`` and ``python`` of this environment)."""
        if argv[0] == "isc":
            return [*isc_argv(), *argv[1:]]
        if argv[0] == "python":
            return [sys.executable, str(RUN_EXAMPLE), *argv[1:]]
        raise AssertionError(
            f"{command.where}: cannot run `$ {command.text}`: the tests run `isc`, `python` "
            "and `echo $?`; mark the block <!-- not run: REASON --> if it cannot run here"
        )

    def as_shown(self, output: str, shown_url: str, shown_exchange: str) -> str:
        """The output as the page's user sees it: their broker URL and exchange name."""
        output = output.replace(redact_url(self.url), redact_url(shown_url))
        return output.replace(self.exchange, shown_exchange)

    def start(self, command: Command, argv: list[str], shown_url: str, exchange: str) -> None:
        """Start a node in the background; check what it printed until it was ready."""
        real = self.executable(command, argv)
        # NodeProcess has no cwd: a shell changes into the page's directory first.
        shell = ["sh", "-c", 'cd "$0" && exec "$@"', str(self.workdir), *real]
        if argv[0] == "isc":
            node = NodeProcess(shell, ready_line=RUN_READY_LINE)
        else:
            services = SERVERS[argv[1]]
            probe = service_answers(self.url, self.exchange, *services)
            node = NodeProcess(shell, ready_probe=probe)
        node.start()
        self.background.append((command, node))
        assert_output(command, self.as_shown(node.output, shown_url, exchange))

    def stop(self) -> None:
        """SIGTERM every node started in the background; each must exit with 0."""
        failed = []
        for command, node in reversed(self.background):
            code = node.stop(signal.SIGTERM)
            if code != 0:
                failed.append(f"{command.where}: `$ {command.text}` exited {code}\n{node.output}")
        self.background.clear()
        assert not failed, "\n".join(failed)


# -- the tests --------------------------------------------------------------------------------

COMMANDS = all_commands()
PAGES = sorted({c.page for c in COMMANDS if c.skip_reason is None})
SKIPPED = [c for c in COMMANDS if c.skip_reason is not None]


@pytest.fixture
def doc_env(amqp_url: str, exchange: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands and the nodes they start find the suite's broker and the test's exchange."""
    monkeypatch.setenv("ISC_URL", amqp_url)
    monkeypatch.setenv("ISC_EXCHANGE", exchange)
    monkeypatch.delenv("ISC_CODEC", raising=False)


@pytest.fixture
def session(request: pytest.FixtureRequest, amqp_url: str, exchange: str) -> Iterator[Session]:
    """A shell for one page; its background nodes are stopped (and checked) at the end."""
    shell = Session(request.param, amqp_url, exchange)
    try:
        yield shell
    finally:
        shell.stop()


@pytest.mark.usefixtures("doc_env")
@pytest.mark.parametrize("session", PAGES, indirect=True)
def test_the_commands_of_a_page_print_what_it_shows(
    session: Session, request: pytest.FixtureRequest
) -> None:
    page = request.node.callspec.params["session"]
    commands = [c for c in COMMANDS if c.page == page and c.skip_reason is None]
    for command in commands:
        session.run(command)
    skipped = sum(1 for c in SKIPPED if c.page == page)
    print(f"docs/{page}: ran {session.ran} commands, skipped {skipped}")
    assert session.ran == len(commands)


@pytest.mark.parametrize("command", SKIPPED, ids=[c.where for c in SKIPPED])
def test_commands_not_run(command: Command) -> None:
    pytest.skip(f"{command.where} `$ {command.text}`: not run: {command.skip_reason}")


def test_every_command_is_run_or_skipped() -> None:
    run = [c for c in COMMANDS if c.skip_reason is None]
    print(f"doc commands: {len(run)} run, {len(SKIPPED)} skipped")
    assert len(run) >= 20, "the pages lost their commands"
    dollar_lines = sum(
        line.startswith("$ ") for page in DOCS.glob("*.md") for line in page.read_text().split("\n")
    )
    assert len(run) + len(SKIPPED) == dollar_lines, (
        "a `$ ` line outside a ```console block is neither run nor skipped: put it in one"
    )


@pytest.mark.parametrize(
    ("expected", "output", "matches"),
    [
        (["5"], "5\n", True),
        (["5"], "6\n", False),
        (["5"], "5\n6\n", False),
        ([], "", True),
        ([], "unexpected\n", False),
        (["connected in ~11.8 ms"], "connected in 0.4 ms\n", True),
        (["connected in ~11.8 ms"], "connected in 0.4 s\n", False),
        (["pid ~4242) over ...:"], "pid 17) over 1m 5s:\n", True),
        (["service calc", "..."], "service calc\n  a\n  b\n", True),
        (["service calc", "...", "end"], "service calc\nend\n", True),
        (["service calc", "...", "end"], "service calc\nx\n", False),
        (["  add      3  ~1ms"], "  add  3     250us\n", True),
        (["  add      3  ~1ms"], " add  3  250us\n", False),  # the indentation is exact
        (["{", "  ...", "}"], "{\n  a\n  b\n}\n", True),
    ],
)
def test_the_wildcards(expected: list[str], output: str, matches: bool) -> None:
    command = Command("page.md", 1, "isc something", expected)
    if matches:
        assert_output(command, output)
    else:
        with pytest.raises(AssertionError, match="the page shows"):
            assert_output(command, output)
