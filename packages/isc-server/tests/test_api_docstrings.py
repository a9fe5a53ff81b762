"""Every public class and function has a docstring, and so does each public method of a class.

The API reference (docs/api/, rendered by mkdocstrings) is made of these docstrings. Ruff's
pydocstyle rules (``D`` in ruff.toml) check the public modules, but ruff counts every name
defined in a private module (``isc/client/_client.py``) as private, and that is where most of
the API lives: this test checks the names each package exports (``__all__``) instead.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: The modules whose ``__all__`` the API reference documents (one page each).
DOCUMENTED = [
    "isc.server",
    "isc.client",
    "isc.codecs",
    "isc.core",
    "isc.server.testing",
    "isc.client.testing",
]
#: Special methods documented like public methods.
DOCUMENTED_SPECIALS = {"__call__"}


def own_doc(obj: Any) -> str | None:
    """``obj``'s own docstring: a class's not inherited, nor a dataclass's generated one."""
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__")
        if doc and doc.startswith(obj.__name__ + "("):
            return None  # the signature @dataclass writes when there is no docstring
    else:
        doc = getattr(obj, "__doc__", None)
    return doc if isinstance(doc, str) and doc.strip() else None


def members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties ``cls`` defines itself."""
    for name, raw in vars(cls).items():
        if name.startswith("_") and name not in DOCUMENTED_SPECIALS:
            continue
        if isinstance(raw, (classmethod, staticmethod)):
            yield name, raw.__func__
        elif isinstance(raw, functools.cached_property):
            yield name, raw.func
        elif isinstance(raw, property) or inspect.isfunction(raw):
            yield name, raw


def inherited_doc(cls: type, name: str) -> str | None:
    """The docstring of the member ``name`` overrides in a base class of ``cls``."""
    for base in cls.__mro__[1:]:
        raw = base.__dict__.get(name)
        if isinstance(raw, (classmethod, staticmethod)):
            raw = raw.__func__
        if raw is not None and own_doc(raw):
            return own_doc(raw)
    return None


def public_objects() -> Iterator[tuple[str, Any, str | None]]:
    """(qualified name, object, docstring) of every documented class, function and member."""
    seen: set[int] = set()
    for module_name in DOCUMENTED:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (isinstance(obj, type) or inspect.isroutine(obj)) or id(obj) in seen:
                continue  # a constant (documented by a `#:` comment), or seen on another page
            if not getattr(obj, "__module__", "").startswith("isc."):
                continue  # `isc.codecs.text_type` is `str`
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj, own_doc(obj)
            if isinstance(obj, type):
                for member, value in members(obj):
                    doc = own_doc(value) or inherited_doc(obj, member)
                    yield f"{module_name}.{name}.{member}", value, doc


def test_every_public_object_has_a_docstring() -> None:
    objects = list(public_objects())
    assert len(objects) > 100, "the packages lost their public API"
    missing = [name for name, _obj, doc in objects if doc is None]
    assert not missing, "public objects without a docstring:\n  " + "\n  ".join(missing)


@pytest.mark.parametrize("module_name", DOCUMENTED)
def test_every_documented_module_has_a_page(module_name: str) -> None:
    api = Path(__file__).resolve().parents[3] / "docs" / "api"
    stubs = {path.read_text().strip() for path in api.glob("*.md")}
    assert f"::: {module_name}" in stubs, f"docs/api/ has no page rendering {module_name}"
