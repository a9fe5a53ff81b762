"""A griffe extension: the reST markup of isc's docstrings, as Markdown for mkdocstrings.

isc's docstrings are Sphinx-flavoured: ``:param x:`` fields (mkdocstrings' ``sphinx`` style
parses those), ``:class:`Name``` roles, ``>>>`` examples and ``text::`` literal blocks. Markdown
would show the roles as text, the examples as quotes and the ``::`` verbatim, so before
mkdocstrings renders a docstring this rewrites

* a role into a cross-reference to the object it names, resolved in the docstring's scope
  (``:meth:`stop``` in ``Node.run`` links ``Node.stop``); a name that is not documented (the
  standard library's, a private one) stays code;
* a ``>>>`` example into a ``pycon`` code block, without its ``# doctest:`` directives;
* ``text::`` and the indented block after it into ``text:`` and a ``python`` code block;
* a ````literal```` broken over two lines into one line (Markdown's code spans end at a line
  break: ``Node.add_hook`` showed its backquotes).

Used by mkdocs.yml (``extensions:`` of the mkdocstrings Python handler); nothing imports it.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|meth|func|attr|exc|data|const|mod|obj):`(~?)([^`]+)`")
DOCTEST_FLAGS = re.compile(r"\s*#\s*doctest:.*$")
#: A ``literal``, maybe over a line break (Python-Markdown ends a code span at a line end).
LITERAL = re.compile(r"``(?!`)(.+?)(?<!`)``", re.DOTALL)


def crossref(obj: griffe.Object, match: re.Match[str]) -> str:
    """An optional autorefs cross-reference for one role (code if its target is unknown)."""
    role, tilde, target = match.groups()
    target = target.strip().removesuffix("()")
    text = target.rsplit(".", 1)[-1] if tilde else target
    if role in ("meth", "func"):
        text += "()"
    head, _, rest = target.partition(".")
    try:
        identifier = obj.resolve(head) + (f".{rest}" if rest else "")
    except griffe.NameResolutionError:
        identifier = target
    code = f"<code>{html.escape(text)}</code>"
    return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'


def fenced(language: str, lines: list[str]) -> list[str]:
    """``lines`` as a fenced code block, with a blank line either side."""
    return ["", f"```{language}", *lines, "```", ""]


def to_markdown(obj: griffe.Object, text: str) -> str:
    """The docstring ``text`` of ``obj`` with its reST markup turned into Markdown."""
    text = LITERAL.sub(lambda m: "``" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "``", text)
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.lstrip().startswith(">>>"):
            example = []
            while index < len(lines) and lines[index].strip():
                example.append(DOCTEST_FLAGS.sub("", lines[index].strip()))
                index += 1
            out += fenced("pycon", example)
            continue
        if line.rstrip().endswith("::"):
            start = index + 1
            while start < len(lines) and not lines[start].strip():
                start += 1
            indent = len(line) - len(line.lstrip())
            end = start
            while end < len(lines) and (
                not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
            ):
                end += 1
            if end > start:
                intro = line.rstrip()[:-2].rstrip()
                if intro.strip():
                    out.append(ROLE.sub(lambda m: crossref(obj, m), intro + ":"))
                block = textwrap.dedent("\n".join(lines[start:end])).strip("\n").splitlines()
                out += fenced("python", block)
                index = end
                continue
        out.append(ROLE.sub(lambda m: crossref(obj, m), line))
        index += 1
    return "\n".join(out).strip("\n")


class RestMarkup(griffe.Extension):
    """Rewrite every docstring's reST markup as Markdown once the package is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of ``obj``, if it has one."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj, obj.docstring.value)
