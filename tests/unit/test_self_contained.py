"""The repository stands on its own: no tracked file points outside it, and its test data is in it.

A clone has no sibling folders. The labelled bounce corpus is vendored in
``tests/data/bounce-corpus``, and the design is in ``docs/architecture.md``. A reference to a
folder beside the clone would be a dead link, or a test that cannot find its data.
``CHANGELOG.md`` may still name the old location as history.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "bounce-corpus"

# Spelled in pieces so that this file does not match itself.
_SIBLING = "shared"
FORBIDDEN = (f"../{_SIBLING}", f"{_SIBLING}/DESIGN", f"{_SIBLING}/bounce-corpus")
ALLOWED = frozenset({"CHANGELOG.md"})


# Not part of the repository: what the tools make in a working tree.
_UNTRACKED_DIRS = frozenset(
    {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis"}
)


def tracked_files() -> list[str]:
    """The files git tracks, or every source file when the tree is not a git checkout."""
    if not (ROOT / ".git").exists():  # an unpacked source archive
        return [
            path.relative_to(ROOT).as_posix()
            for path in sorted(ROOT.rglob("*"))
            if path.is_file()
            and not _UNTRACKED_DIRS.intersection(path.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in path.parts)
            and path.relative_to(ROOT).parts[0] != "var"
        ]
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z"],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"git ls-files failed in {ROOT}: {exc}", pytrace=False)
    return [name for name in done.stdout.decode().split("\0") if name]


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for name in tracked_files():
        path = ROOT / name
        if name in ALLOWED or not path.is_file():
            continue  # a file deleted in the working tree but not yet in git
        data = path.read_bytes()
        offenders += [f"{name}: {word}" for word in FORBIDDEN if word.encode() in data]
    assert not offenders, "link to a folder outside the repository:\n" + "\n".join(offenders)


def test_the_bounce_corpus_is_in_the_repository() -> None:
    labels = CORPUS / "labels.jsonl"
    assert labels.is_file(), f"{labels} is missing: the bounce tests need it"
    assert (CORPUS / "LICENSE-set-of-emails").is_file(), "the corpus's BSD licence must stay"
    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line]
    files = {row["file"] for row in rows}
    missing = sorted(f for f in files if not (CORPUS / f).is_file())
    linked = sorted(f for f in files if (CORPUS / f).is_symlink())
    assert not missing, f"labelled emails missing: {missing[:5]}"
    assert not linked, f"labelled emails are symlinks, not files: {linked[:5]}"
    if (ROOT / ".git").exists():
        tracked = set(tracked_files())
        untracked = sorted(f for f in files if f"tests/data/bounce-corpus/{f}" not in tracked)
        assert not untracked, f"labelled emails not tracked by git: {untracked[:5]}"
