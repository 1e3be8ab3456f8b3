"""SQLite only: the intake's suppression look-up runs on the event loop and never waits.

``suppression_for`` asks a lock-free connection first (``timeout=0``); when SQLite answers
busy, the same query goes to the reader's thread, which may wait ``busy_timeout``.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.model import Suppression, SuppressionReason
from gateway.store.sqlite import SqliteStore


class BusyConnection:
    """Answers every statement as SQLite does when another connection holds the lock."""

    def __init__(self) -> None:
        self.asked = 0

    def execute(self, *args: Any) -> Any:
        self.asked += 1
        raise sqlite3.OperationalError("database is locked")

    def close(self) -> None:
        pass


def _suppression(address: str) -> Suppression:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    return Suppression("t1", address, SuppressionReason.NONEXISTENT_ADDRESS, since, None, None, "")


async def test_a_busy_loop_connection_hands_the_look_up_to_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "q.db", busy_timeout=timedelta(seconds=2))
    await store.open()
    try:
        await store.add_suppression(_suppression("a@example.com"))
        now = datetime.now(UTC)
        # The loop's connection sees a commit the moment it returns.
        assert await store.suppression_for("t1", "a@example.com", now) == _suppression(
            "a@example.com"
        )
        busy = BusyConnection()
        monkeypatch.setattr(store, "_lookups", busy)
        assert await store.suppression_for("t1", "a@example.com", now) == _suppression(
            "a@example.com"
        )
        assert await store.suppression_for("t1", "b@example.com", now) is None
        assert busy.asked == 2  # asked first each time, answered by the reader's thread
    finally:
        await store.close()


async def test_the_loop_connection_is_read_only_and_closed_with_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db")
    await store.open()
    lookups = store._lookups
    assert lookups is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        lookups.execute("DELETE FROM suppressions")
    await store.close()
    assert store._lookups is None
    with pytest.raises(sqlite3.ProgrammingError):
        lookups.execute("SELECT 1")
