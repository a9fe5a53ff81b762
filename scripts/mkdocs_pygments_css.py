"""An MkDocs hook: the stylesheet that colours the code blocks, made by Pygments at build time.

``pymdownx.highlight`` has Pygments mark up every code block while the site is built, so the
pages need no JavaScript (the theme's highlight.js would come from a CDN, blank offline).
The colours are a stylesheet; this hook adds Pygments' own, for its pinned version, to the
site as ``css/pygments.css`` and to the pages' ``extra_css``. Used by mkdocs.yml (``hooks:``).
"""

from __future__ import annotations

from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from pygments.formatters import HtmlFormatter

STYLESHEET = "css/pygments.css"
#: A light style, legible on the readthedocs theme's code background.
STYLE = "default"


def on_config(config: MkDocsConfig, **kwargs: Any) -> MkDocsConfig:
    """Link the stylesheet from every page."""
    config.extra_css.append(STYLESHEET)
    return config


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    """Add the stylesheet, generated for the ``.highlight`` blocks, to the site's files."""
    css = HtmlFormatter(style=STYLE).get_style_defs(".highlight")
    files.append(File.generated(config, STYLESHEET, content=css))
    return files
