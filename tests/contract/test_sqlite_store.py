"""SQLite only: what several processes on one file and the event loop rely on.

``suppression_for`` (the intake asks at every RCPT) runs on the reader's thread like every
read, never on the event loop, and may wait ``busy_timeout`` there. Writers take turns on
``<db>-writer.lock``; a relay node id is held by one store at a time.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.core.errors import StoreError, StoreUnavailable
from gateway.core.model import NewMessage, Suppression, SuppressionReason
from gateway.core.streams import Stream
from gateway.store.sqlite import SqliteStore
from tests.scenarios.loop_probe import sqlite_calls_on_this_thread


def _suppression(address: str) -> Suppression:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    return Suppression("t1", address, SuppressionReason.NONEXISTENT_ADDRESS, since, None, None, "")


async def test_the_suppression_look_up_runs_on_the_readers_thread(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "q.db", busy_timeout=timedelta(seconds=2))
    await store.open()
    try:
        await store.add_suppression(_suppression("a@example.com"))
        now = datetime.now(UTC)
        with sqlite_calls_on_this_thread() as on_the_loop:
            # The reader sees a commit the moment it returns.
            found = await store.suppression_for("t1", "a@example.com", Stream.TRANSACTIONAL, now)
            missing = await store.suppression_for("t1", "b@example.com", Stream.TRANSACTIONAL, now)
        assert found == _suppression("a@example.com")
        assert missing is None
        assert on_the_loop == []
    finally:
        await store.close()


async def test_a_slow_read_does_not_stall_the_loop(tmp_path: Path) -> None:
    """The reader's connection made slow, as a page read from a cold disk is: the look-up
    takes its time on the reader's thread while the loop runs on."""
    store = SqliteStore(tmp_path / "q.db")
    await store.open()
    try:
        await store.add_suppression(_suppression("a@example.com"))

        def slow_down(c: sqlite3.Connection) -> None:
            c.set_progress_handler(lambda: time.sleep(0.002) or 0, 1)  # 2 ms every VM step

        await store._on(store._reader, slow_down)
        loop = asyncio.get_running_loop()
        started = loop.time()
        look_up = asyncio.ensure_future(
            store.suppression_for("t1", "a@example.com", Stream.TRANSACTIONAL, datetime.now(UTC))
        )
        gaps, last = [], loop.time()
        while not look_up.done():
            await asyncio.sleep(0.005)
            gaps.append(loop.time() - last)
            last = loop.time()
        assert look_up.result() == _suppression("a@example.com")
        assert loop.time() - started > 0.1  # the read was slow...
        assert max(gaps) < 0.05, gaps  # ...and the loop did not wait for it
    finally:
        await store.close()


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


# --- query plans on the hot path -----------------------------------------------------------


async def test_the_enqueues_duplicate_look_ups_search_by_message_id(tmp_path: Path) -> None:
    """Every ``SELECT`` of an enqueue finds its rows through an index on the Message-ID.

    SQLite keeps no statistics here, so an index added for another reader can win the plan:
    migration 011's ``messages_tenant_received`` did, and each enqueue read every message of
    its tenant within the duplicate window (the gateway's throughput fell from ~950 to ~300
    messages a second in ``bench/throughput.py``)."""
    from gateway.store.sqlite_writes import enqueue_rows

    store = SqliteStore(tmp_path / "q.db")
    await store.open()
    await store.close()
    window = timedelta(days=1)
    with sqlite3.connect(tmp_path / "q.db") as c:
        statements: list[str] = []
        c.set_trace_callback(statements.append)
        first = NewMessage("q1", "t1", "app@acme.example", ("ana@example.com",),
                           b"Subject: x\r\n\r\nx\r\n", "<m1@acme.example>", "x",
                           datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
        enqueue_rows(c, first, window)
        again = NewMessage("q2", "t1", "app@acme.example", ("ana@example.com", "bia@example.com"),
                           b"Subject: x\r\n\r\nx\r\n", "<m1@acme.example>", "x",
                           datetime(2026, 1, 1, 0, 1, tzinfo=UTC))  # fmt: skip
        result = enqueue_rows(c, again, window)
        c.set_trace_callback(None)
        assert result.duplicates == ("ana@example.com",)  # the look-ups ran
        looked_up = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        on_messages = [s for s in looked_up if "message_id = " in s]
        assert len(on_messages) == 4  # one per message, then one per recipient of the second
        for sql in on_messages:
            plan = " / ".join(str(step[3]) for step in c.execute("EXPLAIN QUERY PLAN " + sql))
            assert "messages_message_id" in plan, (sql, plan)
            assert "messages_tenant_received" not in plan, (sql, plan)
