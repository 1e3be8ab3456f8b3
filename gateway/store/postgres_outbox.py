"""The PostgreSQL store's webhook outbox log and claims (mixed into ``PostgresStore``).

The PostgreSQL side of ``store.sqlite_outbox``: reading the events log into the outbox,
moving its cursor and claiming due rows; the rest of the outbox is written once for both
stores (``store.outbox_queries``). Does not own: the pool, the schema or the translation of
errors (``store.postgres``), nor what is sent or when (``gateway.observe.webhooks``).

A claim is ``SELECT … FOR UPDATE SKIP LOCKED`` and an ``UPDATE`` pushing ``next_at``
forward by the lease, in one statement: dispatchers on several nodes never lease the same
row, and a dispatcher that dies mid-POST leaves its rows to come back by themselves.
Delivery is at-least-once; the row id travels as ``X-Gateway-Event-Id``.

The events log feeds the outbox as on SQLite (``webhook_events``, ``commit_webhooks``), with
the cursor at a (transaction id, event id) pair: identity values are taken at insert, not at
commit, so reading by id alone could pass over an event whose transaction commits late.
Events are read in ``(tx, id)`` order, only those of transactions older than every one still
running (``pg_snapshot_xmin``), which can gain no event any more (migration 005). Nodes
reading the same batch race for the cursor; the commit moves it only from where the batch
was read, so one of them writes the rows and the others write nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gateway.core.records import ClaimedWebhook, EventBatch, OutboxItem
from gateway.store.mixins import PostgresQueries
from gateway.store.outbox_queries import insert_items
from gateway.store.rows import LOGGED_EVENT_COLUMNS, logged_events
from gateway.store.sql import POSTGRES, run_postgres

if TYPE_CHECKING:
    import asyncpg


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PostgresOutboxLog(PostgresQueries):
    """The events log into the outbox, and claims; relies on ``PostgresStore._run``."""

    async def webhook_events(self, limit: int, tenants: frozenset[str] | None = None) -> EventBatch:
        """Up to ``limit`` events after the cursor, in ``(tx, id)`` order, of finished
        transactions only (see the module docstring); with ``tenants``, only theirs are
        decoded and returned (the others still move ``next``)."""

        async def work(c: asyncpg.Connection) -> EventBatch:
            cursor = await c.fetchrow(
                "SELECT last_tx::text, last_event_id, salt FROM webhook_cursor WHERE id = 1"
            )
            last = (int(cursor[0]), int(cursor[1]))
            if tenants is not None and not tenants:  # no endpoint at all: ids are enough
                source = "e.id, e.tx::text FROM events e"
            else:
                source = (
                    f"{LOGGED_EVENT_COLUMNS}, r.status, e.tx::text FROM events e"
                    " LEFT JOIN recipients r ON r.id = e.recipient_id"
                )
            found = await c.fetch(
                f"SELECT {source} WHERE (e.tx, e.id) > ($1::text::xid8, $2)"
                " AND e.tx < pg_snapshot_xmin(pg_current_snapshot())"
                " ORDER BY e.tx, e.id LIMIT $3",
                str(last[0]),
                last[1],
                limit,
            )
            # The transaction id is the last column, the event id the first.
            end = (int(found[-1][len(found[-1]) - 1]), int(found[-1][0])) if found else last
            return EventBatch(last, end, logged_events(found, tenants), cursor[2], len(found))

        return await self._run(work, transaction=False)

    async def commit_webhooks(
        self, cursor: tuple[int, int], next: tuple[int, int], items: Sequence[OutboxItem]
    ) -> bool:
        """Write ``items`` and move the cursor from ``cursor`` to ``next``, in one transaction.

        Returns false, writing nothing, when the cursor is no longer at ``cursor`` (another
        node took the batch; a node that holds the cursor row is waited for).
        """

        async def work(c: asyncpg.Connection) -> bool:
            status = await c.execute(
                "UPDATE webhook_cursor SET last_tx = $1::text::xid8, last_event_id = $2"
                " WHERE id = 1 AND last_tx = $3::text::xid8 AND last_event_id = $4",
                str(next[0]),
                next[1],
                str(cursor[0]),
                cursor[1],
            )
            if _count(status) != 1:
                return False
            await run_postgres(c, insert_items(POSTGRES, items))
            return True

        return await self._run(work)

    async def claim_webhooks(
        self, now: datetime, limit: int, lease: timedelta = timedelta(minutes=2)
    ) -> list[ClaimedWebhook]:
        """Lease up to ``limit`` due rows until ``now + lease``, oldest due first."""
        found = await self._run(
            lambda c: c.fetch(
                "WITH due AS (SELECT id, next_at FROM webhook_outbox WHERE state = 'pending'"
                " AND next_at <= $1 ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED),"
                " claimed AS (UPDATE webhook_outbox o SET next_at = $3 FROM due"
                " WHERE o.id = due.id RETURNING o.id, o.tenant, o.type, o.body, o.attempts,"
                " due.next_at AS was_due)"
                # The tenant's endpoint as it is now (the view falls back to the tenant's
                # admin settings); none when it was removed since.
                " SELECT c.id, c.tenant, c.type, c.body, c.attempts, w.url, w.secret"
                " FROM claimed c LEFT JOIN webhook_endpoints w ON w.tenant = c.tenant"
                ' ORDER BY c.was_due, c.id COLLATE "C"',
                now.timestamp(),
                limit,
                (now + lease).timestamp(),
            ),
            transaction=False,  # one statement: its own transaction
        )
        return [
            ClaimedWebhook(r[0], r[1], r[2], bytes(r[3]), r[4], r[5] or "", r[6] or "")
            for r in found
        ]
