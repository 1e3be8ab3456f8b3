"""Shared fixtures for the bounce tests: the labelled corpus in ../shared, read in place."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``$GATEWAY_SHARED`` or ``../shared`` beside the project root (never copied in)."""
    env = os.environ.get("GATEWAY_SHARED")
    return Path(env) if env else PROJECT / ".." / "shared"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The labelled bounce corpus folder; the test is skipped when it is absent."""
    path = shared_dir() / "bounce-corpus"
    if not (path / "labels.jsonl").exists():
        pytest.skip(f"bounce corpus not found at {path} (set GATEWAY_SHARED)")
    return path


@pytest.fixture(scope="session")
def bench() -> ModuleType:
    """The benchmark module, so the accuracy test scores exactly as bench/bounces.py does."""
    spec = importlib.util.spec_from_file_location("bench_bounces", PROJECT / "bench" / "bounces.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
