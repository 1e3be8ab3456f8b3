"""Collect another directory's store-backed tests again, in a module of this directory.

A test function is a plain module attribute: bound into a module here, pytest collects it
with this directory's fixtures (``conftest.py``), so the same test body runs on the
PostgreSQL store. The fixtures those modules define themselves come along.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parent.parent


def _is_fixture(value: Any) -> bool:
    return hasattr(value, "_fixture_function_marker") or hasattr(value, "_pytestfixturefunction")


def recollect(directory: str, uses: frozenset[str], into: dict[str, Any]) -> list[str]:
    """Bind into ``into`` every test of ``tests/<directory>/test_*.py`` that asks for one
    of the fixtures ``uses`` (the others do not touch the store), with the fixtures its
    module defines. A test name seen twice is prefixed with its module's name.

    Returns:
        The names bound, for ``__all__``.
    """
    bound: list[str] = []
    for path in sorted((_TESTS / directory).glob("test_*.py")):
        module = importlib.import_module(f"tests.{directory}.{path.stem}")
        for name, value in vars(module).items():
            if _is_fixture(value) and not name.startswith("_"):
                if name in into and into[name] is not value:
                    raise RuntimeError(f"fixture {name!r} is defined twice under {directory}")
                into[name] = value
                bound.append(name)
            elif name.startswith("test_") and callable(value):
                wanted = set(inspect.signature(value).parameters) & uses
                if not wanted:
                    continue
                key = name if name not in into else f"test_{path.stem[5:]}__{name[5:]}"
                into[key] = value
                bound.append(key)
    return bound
