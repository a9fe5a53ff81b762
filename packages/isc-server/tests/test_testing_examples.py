"""The testing guide's unit-test examples run, and the guide shows them as they are.

docs/testing.md quotes docs/examples/testing; every ``python`` block of the guide must appear
verbatim in one of the example files, so the guide cannot drift from the code CI runs. The
integration examples (they need a broker) run in integration-tests/test_user_testing_examples.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "examples" / "testing"
GUIDE = ROOT / "docs" / "testing.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_unit_test_examples_pass_without_a_broker() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ISC_TEST_"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-k", "unit"],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        env={**clean, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"\b7 passed, 2 deselected in ", output), output


def test_every_python_block_of_the_guide_is_quoted_from_an_example_file() -> None:
    sources = {path.name: path.read_text() for path in sorted(EXAMPLE.glob("*.py"))}
    blocks = BLOCK.findall(GUIDE.read_text())
    assert len(blocks) >= 5, "docs/testing.md lost its examples"
    for block in blocks:
        found = [name for name, text in sources.items() if block.strip() in text]
        assert found, f"this block of docs/testing.md is in no file of {EXAMPLE}:\n{block}"
