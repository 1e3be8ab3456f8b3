"""What the install tests share: a copy of the checkout as a newcomer gets it."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_checkout(names: Iterable[str], dest: Path) -> Path:
    """Copy the named top-level files and folders of the checkout into ``dest`` (made), without
    the checkout's state (its venv, store and caches are never named; ``__pycache__`` is
    skipped); ``dest``."""
    dest.mkdir(parents=True)
    for name in names:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest
