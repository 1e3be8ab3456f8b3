"""PostgreSQL queries for the webhook outbox (mixed into ``PostgresStore``).

The PostgreSQL dialect of ``store.sqlite_outbox``, method by method: same signatures,
same row types (``core.records``), same semantics. Does not own: the pool, the schema or the
translation of errors (``store.postgres``), nor what is sent or when (``gateway.observe.webhooks``).

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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gateway.core.records import (
    FAILED,
    PENDING,
    ClaimedWebhook,
    EventBatch,
    OutboxItem,
    WebhookRecord,
    WebhookTarget,
)
from gateway.store.mixins import PostgresQueries
from gateway.store.rows import LOGGED_EVENT_COLUMNS, dt, logged_events, ts, utc

if TYPE_CHECKING:
    import asyncpg

_C = ' COLLATE "C"'  # byte order, as SQLite compares text, whatever the database's locale


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PostgresOutboxQueries(PostgresQueries):
    """Webhook outbox queries; relies on ``PostgresStore._run``."""

    # --- endpoints ------------------------------------------------------------------------

    async def set_webhook(self, tenant: str, url: str, secret: str) -> None:
        """Create or replace ``tenant``'s endpoint (validate ``url`` before: webhooks.py)."""
        await self._run(
            lambda c: c.execute(
                "INSERT INTO tenant_webhooks (tenant, url, secret, created_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant) DO UPDATE SET url = excluded.url,"
                " secret = excluded.secret, created_at = excluded.created_at",
                tenant,
                url,
                secret,
                datetime.now(UTC).timestamp(),
            )
        )

    async def get_webhook(self, tenant: str) -> WebhookTarget | None:
        row = await self._run(
            lambda c: c.fetchrow(
                "SELECT tenant, url, secret FROM webhook_endpoints WHERE tenant = $1", tenant
            ),
            transaction=False,
        )
        return None if row is None else WebhookTarget(row[0], row[1], row[2])

    async def delete_webhook(self, tenant: str) -> int:
        status = await self._run(
            lambda c: c.execute("DELETE FROM tenant_webhooks WHERE tenant = $1", tenant)
        )
        return _count(status)

    async def webhook_tenants(self) -> frozenset[str]:
        """The tenants that have an endpoint (the outbox writer skips the others)."""
        found = await self._run(
            lambda c: c.fetch("SELECT tenant FROM webhook_endpoints"), transaction=False
        )
        return frozenset(row[0] for row in found)

    async def webhook_message_ids(self, queue_ids: Sequence[str]) -> dict[str, str]:
        """queue id → the application's ``Message-ID`` header, for the messages that have one."""
        if not queue_ids:
            return {}
        found = await self._run(
            lambda c: c.fetch(
                "SELECT queue_id, message_id FROM messages WHERE queue_id = ANY($1::text[])"
                " AND message_id IS NOT NULL",
                list(queue_ids),
            ),
            transaction=False,
        )
        return {row[0]: row[1] for row in found}

    # --- the events log → the outbox -------------------------------------------------------

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
            await _insert_items(c, items)
            return True

        return await self._run(work)

    # --- the outbox -------------------------------------------------------------------------

    async def enqueue_webhook(self, item: OutboxItem) -> None:
        await self.enqueue_webhooks([item])

    async def enqueue_webhooks(self, items: Sequence[OutboxItem]) -> None:
        """Write ``items`` in one statement, due at once; an id already present is kept."""
        if not items:
            return
        await self._run(lambda c: _insert_items(c, items), transaction=False)

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

    async def mark_webhook_delivered(self, id: str, at: datetime | None = None) -> None:
        when = (at or datetime.now(UTC)).timestamp()
        await self._run(
            lambda c: c.execute(
                "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1,"
                " delivered_at = $1, next_at = NULL, last_error = '' WHERE id = $2",
                when,
                id,
            ),
            transaction=False,
        )

    async def mark_webhook_failed(
        self,
        id: str,
        next_at: datetime | None,
        error: str,
    ) -> None:
        """Count a failed attempt; retry at ``next_at``, or give up when it is ``None``."""
        state = PENDING if next_at is not None else FAILED
        await self._run(
            lambda c: c.execute(
                "UPDATE webhook_outbox SET state = $1, attempts = attempts + 1, next_at = $2,"
                " last_error = $3 WHERE id = $4",
                state,
                ts(next_at),
                error[:500],
                id,
            ),
            transaction=False,
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
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        sql = (
            "SELECT id, tenant, type, state, attempts, created_at, next_at, delivered_at,"
            " last_error, body FROM webhook_outbox WHERE true"
        )
        if tenant is not None:
            sql += f" AND tenant = {arg(tenant)}"
        if state is not None:
            sql += f" AND state = {arg(state)}"
        if before is not None:
            at, key = arg(float(before[0])), arg(before[1])
            sql += f" AND (created_at < {at} OR (created_at = {at} AND id{_C} < {key}))"
        sql += f" ORDER BY created_at DESC, id{_C} DESC LIMIT {arg(limit)}"
        found = await self._run(lambda c: c.fetch(sql, *args), transaction=False)
        return [
            WebhookRecord(
                r[0], r[1], r[2], r[3], r[4], utc(r[5]), dt(r[6]), dt(r[7]), r[8], bytes(r[9])
            )
            for r in found
        ]

    async def webhook_backlog(self) -> tuple[int, datetime | None]:
        """Pending rows and the creation time of the oldest (for the backlog gauges)."""
        row = await self._run(
            lambda c: c.fetchrow(
                "SELECT count(*), min(created_at) FROM webhook_outbox WHERE state = 'pending'"
            ),
            transaction=False,
        )
        return int(row[0]), dt(row[1])


async def _insert_items(c: asyncpg.Connection, items: Sequence[OutboxItem]) -> None:
    """One statement, in the caller's transaction if any; an id already present is kept."""
    if not items:
        return
    await c.execute(
        "INSERT INTO webhook_outbox (id, tenant, type, body, created_at, next_at)"
        " SELECT u.id, u.tenant, u.type, u.body, u.created_at, u.created_at"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::float8[])"
        " WITH ORDINALITY AS u(id, tenant, type, body, created_at, n) ORDER BY u.n"
        " ON CONFLICT (id) DO NOTHING",
        [i.id for i in items],
        [i.tenant for i in items],
        [i.type for i in items],
        [i.body for i in items],
        [i.created_at.timestamp() for i in items],
    )
