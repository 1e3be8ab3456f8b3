"""Fixtures for the bounce tests: the labelled corpus in tests/data/bounce-corpus."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def corpus(bench: ModuleType) -> Path:
    """The labelled bounce corpus folder (``bench/bounces.py`` decides where it is).

    The corpus is part of the repository (``tests/data/bounce-corpus``), so its absence is a
    broken checkout, not a missing extra: every test that uses it fails with this message
    rather than skipping, which would hide that most of the bounce tests did not run.
    """
    path: Path = bench.corpus_dir()
    if not (path / "labels.jsonl").is_file():
        pytest.fail(
            f"bounce corpus not found at {path}: restore tests/data/bounce-corpus from git"
            " (or unset GATEWAY_SHARED if it points elsewhere)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def bench() -> ModuleType:
    """The benchmark module, so the accuracy test scores exactly as bench/bounces.py does
    (the repository root is on pytest's path: ``pythonpath`` in pyproject.toml)."""
    from bench import bounces

    return bounces
