"""SQLite queries for the webhook outbox (mixed into ``SqliteStore``).

Owns: each tenant's webhook endpoint and secret (``tenant_webhooks``; read through the view
``webhook_endpoints``, which falls back to the admin API's ``tenants.webhook_url``/
``webhook_secret`` columns of migration 003) and the durable outbox
(``webhook_outbox``): enqueue, claim with a lease, mark delivered/failed, history. Does not
own: the connection, the writer or the schema's other tables (``store.sqlite``), nor what is
sent or when (``gateway.observe.webhooks``).

The outbox is fed from the events log (migration 005): ``webhook_events`` reads the events
after the durable cursor (``webhook_cursor``) and ``commit_webhooks`` writes their outbox rows
and moves the cursor in one transaction, only if the cursor is still where the batch was read
from. An event is committed by the store before any webhook exists; a crash before the
outbox transaction commits leaves the cursor behind it, so the next writer reads it again.
SQLite has one writer, so event ids grow in commit order and a reader never sees a gap fill
in behind the cursor. Ids of deleted events may be handed out again (no ``AUTOINCREMENT``):
the cursor is kept at or below the highest id present.

A claim pushes the row's ``next_at`` forward by the lease, like ``claim_due`` does for
recipients: a dispatcher that dies mid-POST leaves the row to come back by itself. Delivery
is therefore at-least-once; the row id travels as ``X-Gateway-Event-Id`` so receivers can
drop duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gateway.core.records import (
    DELIVERED,
    FAILED,
    PENDING,
    ClaimedWebhook,
    EventBatch,
    OutboxItem,
    WebhookRecord,
    WebhookTarget,
)
from gateway.store.mixins import SqliteQueries
from gateway.store.rows import LOGGED_EVENT_COLUMNS, logged_events

# The records this module's queries take and return, where the admin API and older callers
# import them from (they are ``core.records``').
__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "ClaimedWebhook",
    "EventBatch",
    "OutboxItem",
    "OutboxQueries",
    "WebhookRecord",
    "WebhookTarget",
]

if TYPE_CHECKING:
    import sqlite3

def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class OutboxQueries(SqliteQueries):
    """Webhook outbox queries; relies on ``SqliteStore._read`` and ``._write``."""

    # --- endpoints ------------------------------------------------------------------------

    async def set_webhook(self, tenant: str, url: str, secret: str) -> None:
        """Create or replace ``tenant``'s endpoint (validate ``url`` before: webhooks.py)."""

        def work(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO tenant_webhooks (tenant, url, secret, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET url = excluded.url,"
                " secret = excluded.secret, created_at = excluded.created_at",
                (tenant, url, secret, datetime.now(UTC).timestamp()),
            )

        await self._write(work)

    async def get_webhook(self, tenant: str) -> WebhookTarget | None:
        row = await self._read(
            lambda c: c.execute(
                "SELECT tenant, url, secret FROM webhook_endpoints WHERE tenant = ?", (tenant,)
            ).fetchone()
        )
        return None if row is None else WebhookTarget(row[0], row[1], row[2])

    async def delete_webhook(self, tenant: str) -> int:
        result: int = await self._write(
            lambda c: c.execute("DELETE FROM tenant_webhooks WHERE tenant = ?", (tenant,)).rowcount
        )
        return result

    async def webhook_tenants(self) -> frozenset[str]:
        """The tenants that have an endpoint (the outbox writer skips the others)."""
        rows = await self._read(
            lambda c: c.execute("SELECT tenant FROM webhook_endpoints").fetchall()
        )
        return frozenset(row[0] for row in rows)

    async def webhook_message_ids(self, queue_ids: Sequence[str]) -> dict[str, str]:
        """queue id → the application's ``Message-ID`` header, for the messages that have one."""
        if not queue_ids:
            return {}
        ids = list(queue_ids)

        def work(c: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                marks = ",".join("?" for _ in chunk)
                found.update(
                    c.execute(
                        f"SELECT queue_id, message_id FROM messages WHERE queue_id IN ({marks})"
                        " AND message_id IS NOT NULL",
                        chunk,
                    ).fetchall()
                )
            return found

        return await self._read(work)

    # --- the events log → the outbox -------------------------------------------------------

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
            _insert_items(c, items)
            return True

        result: bool = await self._write(work)
        return result

    # --- the outbox -------------------------------------------------------------------------

    async def enqueue_webhook(self, item: OutboxItem) -> None:
        await self.enqueue_webhooks([item])

    async def enqueue_webhooks(self, items: Sequence[OutboxItem]) -> None:
        """Write ``items`` in one transaction, due at once; an id already present is kept."""

        if items:
            await self._write(lambda c: _insert_items(c, items))

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

    async def mark_webhook_delivered(self, id: str, at: datetime | None = None) -> None:
        when = (at or datetime.now(UTC)).timestamp()
        await self._write(
            lambda c: c.execute(
                "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1,"
                " delivered_at = ?, next_at = NULL, last_error = '' WHERE id = ?",
                (when, id),
            )
        )

    async def mark_webhook_failed(
        self,
        id: str,
        next_at: datetime | None,
        error: str,
    ) -> None:
        """Count a failed attempt; retry at ``next_at``, or give up when it is ``None``."""
        state = PENDING if next_at is not None else FAILED
        await self._write(
            lambda c: c.execute(
                "UPDATE webhook_outbox SET state = ?, attempts = attempts + 1, next_at = ?,"
                " last_error = ? WHERE id = ?",
                (state, _ts(next_at), error[:500], id),
            )
        )

    async def webhook_history(self, tenant: str, limit: int = 50) -> list[WebhookRecord]:
        """The tenant's latest outbox rows, newest first (delivery history for the API)."""
        return await self.webhook_deliveries(tenant, None, limit)

    async def webhook_deliveries(
        self,
        tenant: str | None,
        state: str | None,
        limit: int,
        before: tuple[float, str] | None = None,
    ) -> list[WebhookRecord]:
        """Outbox rows, newest first, with their payloads (``GET /api/v1/webhooks/deliveries``).

        Args:
            tenant: one tenant, or ``None`` for every tenant.
            state: ``pending``, ``delivered`` or ``failed``; ``None`` for all.
            limit: at most this many rows.
            before: the ``(created_at, id)`` of the last row of the previous page.
        """
        sql = (
            "SELECT id, tenant, type, state, attempts, created_at, next_at, delivered_at,"
            " last_error, body FROM webhook_outbox WHERE 1 = 1"
        )
        args: list[Any] = []
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        if before is not None:
            sql += " AND (created_at < ? OR (created_at = ? AND id < ?))"
            args.extend((before[0], before[0], before[1]))
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)
        rows = await self._read(lambda c: c.execute(sql, args).fetchall())
        return [
            WebhookRecord(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                datetime.fromtimestamp(r[5], UTC),
                _dt(r[6]),
                _dt(r[7]),
                r[8],
                bytes(r[9]),
            )
            for r in rows
        ]

    async def webhook_backlog(self) -> tuple[int, datetime | None]:
        """Pending rows and the creation time of the oldest (for the backlog gauges)."""
        row = await self._read(
            lambda c: c.execute(
                "SELECT count(*), min(created_at) FROM webhook_outbox WHERE state = 'pending'"
            ).fetchone()
        )
        return int(row[0]), _dt(row[1])


def _insert_items(c: sqlite3.Connection, items: Sequence[OutboxItem]) -> None:
    c.executemany(
        "INSERT INTO webhook_outbox (id, tenant, type, body, created_at, next_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        [
            (i.id, i.tenant, i.type, i.body, i.created_at.timestamp(), _ts(i.created_at))
            for i in items
        ],
    )
