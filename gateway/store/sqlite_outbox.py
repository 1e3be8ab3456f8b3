"""The SQLite store's webhook outbox log and claims (mixed into ``SqliteStore``).

Owns: reading the events log into the outbox (``webhook_events``), moving the cursor with
the rows it wrote (``commit_webhooks``) and claiming due rows (``claim_webhooks``): where
SQLite's single writer makes them simpler than PostgreSQL's (``store.postgres_outbox``).
The rest of the outbox is written once for both stores (``store.outbox_queries``). Does not
own: the connection, the writer or errors (``store.sqlite``).

The outbox is fed from the events log (migration 005): ``webhook_events`` reads the events
after the durable cursor (``webhook_cursor``) and ``commit_webhooks`` writes their outbox rows
and moves the cursor in one transaction, only if the cursor is still where the batch was read
from. An event is committed by the store before any webhook exists; a crash before the
outbox transaction commits leaves the cursor behind it, so the next writer reads it again.
SQLite has one writer, so event ids grow in commit order and a reader never sees a gap fill
in behind the cursor. Ids of deleted events may be handed out again (no ``AUTOINCREMENT``):
the cursor is kept at or below the highest id present.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

from gateway.core.records import (
    ClaimedWebhook,
    EventBatch,
    OutboxItem,
)
from gateway.store.mixins import SqliteQueries
from gateway.store.outbox_queries import insert_items
from gateway.store.rows import LOGGED_EVENT_COLUMNS, logged_events
from gateway.store.sql import SQLITE, run_sqlite


class SqliteOutboxLog(SqliteQueries):
    """The events log into the outbox, and claims; relies on ``SqliteStore._read`` and
    ``._write``."""

    async def webhook_events(self, limit: int, tenants: frozenset[str] | None = None) -> EventBatch:
        """Up to ``limit`` events after the cursor, oldest first (see the module docstring).

        With ``tenants``, only those tenants' events are decoded and returned; the others
        still count towards ``limit`` and move ``next`` past them.
        """

        def work(c: sqlite3.Connection) -> EventBatch:
            last, salt = c.execute(
                "SELECT last_event_id, salt FROM webhook_cursor WHERE id = 1"
            ).fetchone()
            if tenants is not None and not tenants:  # no endpoint at all: ids are enough
                sql = "SELECT id FROM events e WHERE e.id > ? ORDER BY e.id LIMIT ?"
            else:
                sql = (
                    f"SELECT {LOGGED_EVENT_COLUMNS}, r.status FROM events e"
                    " LEFT JOIN recipients r ON r.id = e.recipient_id"
                    " WHERE e.id > ? ORDER BY e.id LIMIT ?"
                )
            found = c.execute(sql, (last, limit)).fetchall()
            if found:
                end = int(found[-1][0])
            else:  # the newest events were deleted: their ids will be handed out again
                top = c.execute("SELECT max(id) FROM events").fetchone()[0]
                end = min(last, top or 0)
            return EventBatch((0, last), (0, end), logged_events(found, tenants), salt, len(found))

        return await self._read(work)

    async def commit_webhooks(
        self, cursor: tuple[int, int], next: tuple[int, int], items: Sequence[OutboxItem]
    ) -> bool:
        """Write ``items`` and move the cursor from ``cursor`` to ``next``, in one transaction.

        Returns false, writing nothing, when the cursor is no longer at ``cursor`` (another
        writer took the batch).
        """

        def work(c: sqlite3.Connection) -> bool:
            moved = c.execute(
                "UPDATE webhook_cursor SET last_event_id ="
                " min(?, coalesce((SELECT max(id) FROM events), 0))"
                " WHERE id = 1 AND last_event_id = ?",
                (next[1], cursor[1]),
            ).rowcount
            if moved != 1:
                return False
            run_sqlite(c, insert_items(SQLITE, items))
            return True

        result: bool = await self._write(work)
        return result

    async def claim_webhooks(
        self, now: datetime, limit: int, lease: timedelta = timedelta(minutes=2)
    ) -> list[ClaimedWebhook]:
        """Lease up to ``limit`` due rows until ``now + lease``, oldest due first."""

        def work(c: sqlite3.Connection) -> list[ClaimedWebhook]:
            rows = c.execute(
                "SELECT o.id, o.tenant, o.type, o.body, o.attempts, w.url, w.secret"
                " FROM webhook_outbox o LEFT JOIN webhook_endpoints w ON w.tenant = o.tenant"
                " WHERE o.state = 'pending' AND o.next_at <= ? ORDER BY o.next_at LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()
            c.executemany(
                "UPDATE webhook_outbox SET next_at = ? WHERE id = ?",
                [((now + lease).timestamp(), row[0]) for row in rows],
            )
            return [
                ClaimedWebhook(r[0], r[1], r[2], bytes(r[3]), r[4], r[5] or "", r[6] or "")
                for r in rows
            ]

        result: list[ClaimedWebhook] = await self._write(work)
        return result
