"""SQLite only: what several processes on one file and the event loop rely on.

``suppression_for`` asks a lock-free connection first (``timeout=0``); when SQLite answers
busy, the same query goes to the reader's thread, which may wait ``busy_timeout``. Writers
take turns on ``<db>-writer.lock``; a relay node id is held by one store at a time.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.errors import StoreError, StoreUnavailable
from gateway.core.model import NewMessage, Suppression, SuppressionReason
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


# --- several processes on one file: the writers' lock and the node lock -------------------------


def _message(queue_id: str, *rcpts: str) -> NewMessage:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return NewMessage(queue_id, "t1", "app@acme.example", rcpts, b"Subject: x\r\n\r\nx\r\n",
                      None, "x", at)  # fmt: skip


async def test_two_stores_on_one_file_take_turns_and_commit_everything(tmp_path: Path) -> None:
    """Two stores stand for two processes: their writers hold the lock file in turn."""
    stores = [SqliteStore(tmp_path / "q.db") for _ in range(2)]
    for store in stores:
        await store.open()
    try:
        window = timedelta(hours=1)
        await asyncio.gather(
            *(
                stores[n % 2].enqueue(_message(f"q{n}", f"r{n}@example.com"), window)
                for n in range(100)
            )
        )
        with sqlite3.connect(tmp_path / "q.db") as check:
            assert check.execute("SELECT count(*) FROM recipients").fetchone() == (100,)
            assert check.execute("SELECT count(*) FROM events").fetchone() == (100,)
    finally:
        for store in stores:
            await store.close()


async def test_a_writer_lock_held_too_long_fails_the_write_then_it_works(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db", busy_timeout=timedelta(milliseconds=300))
    await store.open()
    lock = os.open(tmp_path / "q.db-writer.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process in the middle of its commit
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.enqueue(_message("q1", "a@example.com"), timedelta(hours=1))
        assert 0.25 < time.monotonic() - started < 5
        fcntl.flock(lock, fcntl.LOCK_UN)
        result = await store.enqueue(_message("q2", "a@example.com"), timedelta(hours=1))
        assert result.queued == ("a@example.com",)
    finally:
        os.close(lock)
        await store.close()


async def test_a_node_id_is_held_by_one_store_at_a_time(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path / "q.db"), SqliteStore(tmp_path / "q.db")
    await first.open()
    await second.open()
    try:
        first.hold_node("gw-1")
        with pytest.raises(StoreError, match="'gw-1' is already running"):
            second.hold_node("gw-1")
        second.hold_node("gw-2")  # another id is free
        await first.close()
        third = SqliteStore(tmp_path / "q.db")
        await third.open()
        try:
            third.hold_node("gw-1")  # released with the store that held it
        finally:
            await third.close()
    finally:
        await first.close()
        await second.close()
