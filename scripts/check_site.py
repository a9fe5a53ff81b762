"""Check the built documentation site: it works offline and no markup shows as text.

Run by ``make docs`` after ``mkdocs build --strict``: ``python scripts/check_site.py site``.

* Offline: no page loads a script, a stylesheet or a font from another host, and every page
  links the Pygments stylesheet (the code is coloured at build time, not by highlight.js).
* Highlighting: the pages' code blocks carry Pygments' token classes.
* Markup: outside code, no page's text shows a backquote, a reST role (``:class:`x```), a
  ``:param`` field, a ``::`` literal-block marker or a ``doctest:`` directive; no code block
  shows a ``doctest:`` directive either.

Exits 1 with one line per problem.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

PYGMENTS_CSS = "css/pygments.css"
#: Text that means docstring or page markup was not converted.
LEFTOVER_MARKUP = [
    (re.compile(r"`"), "a backquote"),
    (re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|data|const|mod|obj):"), "a reST role"),
    (re.compile(r"^\s*:(?:param|raises|returns|rtype)\b", re.MULTILINE), "a :param field"),
    (re.compile(r"::\s*$", re.MULTILINE), "a '::' literal-block marker"),
    (re.compile(r"doctest:"), "a doctest directive"),
]
#: Elements whose text is code (shown as is) or not shown at all.
VERBATIM = {"code", "pre", "script", "style", "textarea", "kbd", "samp"}


class Page(HTMLParser):
    """What one HTML page loads, its prose text and the text of its code blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.remote: list[str] = []
        self.stylesheets: list[str] = []
        self.prose: list[str] = []
        self.blocks: list[str] = []
        self.highlighted = 0
        self._verbatim = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note remote resources, stylesheets and highlighted blocks; track code."""
        values = {name: value or "" for name, value in attrs}
        resource = values.get("src", "") if tag in ("script", "img") else ""
        if tag == "link" and values.get("rel") in ("stylesheet", "preload", "icon"):
            resource = values.get("href", "")
            if values.get("rel") == "stylesheet":
                self.stylesheets.append(resource)
        if re.match(r"(https?:)?//", resource):
            self.remote.append(resource)
        if tag == "div" and "highlight" in values.get("class", "").split():
            self.highlighted += 1
        if tag in VERBATIM:
            self._verbatim += 1
        self._pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        """Leave code."""
        if tag in VERBATIM and self._verbatim:
            self._verbatim -= 1
        if tag == "pre" and self._pre:
            self._pre -= 1

    def handle_data(self, data: str) -> None:
        """Text: prose, a code block's, or inline code (neither checked nor kept)."""
        if self._pre:
            self.blocks.append(data)
        elif not self._verbatim:
            self.prose.append(data)


def check_page(site: Path, path: Path) -> list[str]:
    """The problems of one page."""
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    where = path.relative_to(site)
    problems = [f"{where}: loads {url} from another host" for url in page.remote]
    if not any(href.endswith(PYGMENTS_CSS) for href in page.stylesheets):
        problems.append(f"{where}: does not link {PYGMENTS_CSS}")
    text = path.read_text(encoding="utf-8")
    if "<pre" in text and not page.highlighted:
        problems.append(f"{where}: has code blocks but none is highlighted by Pygments")
    if "doctest:" in "".join(page.blocks):
        problems.append(f"{where}: a code block shows a doctest directive")
    prose = "".join(page.prose)
    for pattern, what in LEFTOVER_MARKUP:
        match = pattern.search(prose)
        if match:
            context = prose[max(0, match.start() - 60) : match.end() + 20].replace("\n", " ")
            problems.append(f"{where}: the text shows {what}: ...{context.strip()}...")
    return problems


def main() -> int:
    """Check every page of the site in ``sys.argv[1]``."""
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "site")
    pages = sorted(site.rglob("*.html"))
    if not pages or not (site / PYGMENTS_CSS).is_file():
        print(f"check_site: {site} has no pages or no {PYGMENTS_CSS}: build it first (make docs)")
        return 1
    problems = [problem for path in pages for problem in check_page(site, path)]
    for problem in problems:
        print(f"check_site: {problem}")
    if problems:
        return 1
    print(f"check_site: {len(pages)} pages work offline, highlighted, no markup left as text")
    return 0


if __name__ == "__main__":
    sys.exit(main())
