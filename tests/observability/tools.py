"""Finding the external programs some tests drive (promtool, chromium, docker).

A missing program skips its tests on a developer's machine but fails them in CI
(``CI`` set to anything but ``""``/``false``/``0``): CI installs them (``dev.py test``), so a
missing one there is a broken set-up, not a reason to go green.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "false", "0", "no")


def find(name: str, *candidates: str | Path, env: str = "") -> str | None:
    """``$env`` if set, else ``name`` on PATH, else next to the venv's python, else a candidate."""
    if env and os.environ.get(env):
        return os.environ[env]
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    for candidate in candidates:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require(name: str, *candidates: str | Path, env: str = "", how: str = "") -> str:
    """The program's path; skips (or, in CI, fails) the test when it is missing."""
    path = find(name, *candidates, env=env)
    if path is None:
        message = f"{name} is not installed" + (f" ({how})" if how else "")
        if in_ci():
            pytest.fail(f"{message}; CI must install it", pytrace=False)
        pytest.skip(message)
    return path
