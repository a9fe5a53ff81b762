"""The python examples of the READMEs compile and import only names that exist.

They talk to a broker on 127.0.0.1:5672, which tests must not use, so they are not run; the
docs' examples are (integration-tests/test_doc_commands.py, test_examples.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[tuple[str, str]]:
    """(README path and block number, code) of every python block."""
    found = []
    for readme in READMES:
        for number, match in enumerate(BLOCK.finditer(readme.read_text()), 1):
            found.append((f"{readme.relative_to(ROOT)}#{number}", match.group(1)))
    return found


BLOCKS = python_blocks()


def test_every_readme_has_an_example() -> None:
    assert {name.split("#")[0] for name, _ in BLOCKS} == {str(r.relative_to(ROOT)) for r in READMES}


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_readme_example_compiles_and_its_imports_exist(where: str, code: str) -> None:
    tree = ast.parse(code, filename=where)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports, f"{where} imports nothing from isc"
    module = ast.Module(body=list(imports), type_ignores=[])
    exec(compile(module, where, "exec"), {})  # ImportError names a renamed or missing API
