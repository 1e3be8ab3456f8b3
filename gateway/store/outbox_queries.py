"""The webhook outbox's queries, written once for both stores.

Owns: each tenant's webhook endpoint and secret (``tenant_webhooks``; read through the view
``webhook_endpoints``, which falls back to the admin API's ``tenants.webhook_url``/
``webhook_secret`` columns of migration 003), writing outbox rows (``insert_items``),
marking them delivered or failed, and the delivery history. Does not own: reading the
events log into the outbox and claiming rows, whose cursor and locking differ by database
(``store.sqlite_outbox``, ``store.postgres_outbox``), nor what is sent or when
(``gateway.observe.webhooks``).

A claim pushes the row's ``next_at`` forward by the lease, like ``claim_due`` does for
recipients: a dispatcher that dies mid-POST leaves the row to come back by itself. Delivery
is therefore at-least-once; the row id travels as ``X-Gateway-Event-Id`` so receivers can
drop duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.core.records import FAILED, PENDING, OutboxItem, WebhookRecord, WebhookTarget
from gateway.store.mixins import Queries
from gateway.store.rows import dt, ts, utc
from gateway.store.sql import Dialect, Script, changed, count, many, row
from gateway.store.sql import rows as fetch


class OutboxQueries(Queries):
    """Webhook endpoints and outbox rows; relies on the store's ``_query``/``_transact``."""

    # --- endpoints ------------------------------------------------------------------------

    async def set_webhook(self, tenant: str, url: str, secret: str) -> None:
        """Create or replace ``tenant``'s endpoint (validate ``url`` before: webhooks.py)."""
        await self._transact(
            changed(
                "INSERT INTO tenant_webhooks (tenant, url, secret, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET url = excluded.url,"
                " secret = excluded.secret, created_at = excluded.created_at",
                tenant,
                url,
                secret,
                datetime.now(UTC).timestamp(),
            )
        )

    async def get_webhook(self, tenant: str) -> WebhookTarget | None:
        def script() -> Script[WebhookTarget | None]:
            found = yield row(
                "SELECT tenant, url, secret FROM webhook_endpoints WHERE tenant = ?", tenant
            )
            return None if found is None else WebhookTarget(found[0], found[1], found[2])

        return await self._query(script())

    async def delete_webhook(self, tenant: str) -> int:
        return await self._transact(changed("DELETE FROM tenant_webhooks WHERE tenant = ?", tenant))

    async def webhook_tenants(self) -> frozenset[str]:
        """The tenants that have an endpoint (the outbox writer skips the others)."""

        def script() -> Script[frozenset[str]]:
            return frozenset(r[0] for r in (yield fetch("SELECT tenant FROM webhook_endpoints")))

        return await self._query(script())

    async def webhook_message_ids(self, queue_ids: Sequence[str]) -> dict[str, str]:
        """queue id → the application's ``Message-ID`` header, for the messages that have one."""
        d = self.dialect

        def script() -> Script[dict[str, str]]:
            found: dict[str, str] = {}
            for chunk in d.chunks(list(queue_ids)):
                among, args = d.among("queue_id", chunk)
                for r in (
                    yield fetch(
                        f"SELECT queue_id, message_id FROM messages WHERE {among}"
                        " AND message_id IS NOT NULL",
                        *args,
                    )
                ):
                    found[r[0]] = r[1]
            return found

        return await self._query(script())

    # --- the outbox -------------------------------------------------------------------------

    async def enqueue_webhook(self, item: OutboxItem) -> None:
        await self.enqueue_webhooks([item])

    async def enqueue_webhooks(self, items: Sequence[OutboxItem]) -> None:
        """Write ``items`` in one transaction, due at once; an id already present is kept."""
        if items:
            await self._transact(insert_items(self.dialect, items))

    async def mark_webhook_delivered(self, id: str, at: datetime | None = None) -> None:
        await self._transact(
            changed(
                "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1,"
                " delivered_at = ?, next_at = NULL, last_error = '' WHERE id = ?",
                (at or datetime.now(UTC)).timestamp(),
                id,
            )
        )

    async def mark_webhook_failed(self, id: str, next_at: datetime | None, error: str) -> None:
        """Count a failed attempt; retry at ``next_at``, or give up when it is ``None``."""
        await self._transact(
            changed(
                "UPDATE webhook_outbox SET state = ?, attempts = attempts + 1, next_at = ?,"
                " last_error = ? WHERE id = ?",
                PENDING if next_at is not None else FAILED,
                ts(next_at),
                error[:500],
                id,
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
            sql += " AND (created_at < ? OR (created_at = ? AND id@C < ?))"
            args.extend((float(before[0]), float(before[0]), before[1]))
        sql += " ORDER BY created_at DESC, id@C DESC LIMIT ?"

        def script() -> Script[list[WebhookRecord]]:
            return [
                WebhookRecord(
                    r[0], r[1], r[2], r[3], r[4], utc(r[5]), dt(r[6]), dt(r[7]), r[8], bytes(r[9])
                )
                for r in (yield fetch(sql, *args, limit))
            ]

        return await self._query(script())

    async def webhook_backlog(self) -> tuple[int, datetime | None]:
        """Pending rows and the creation time of the oldest (for the backlog gauges)."""

        def script() -> Script[tuple[int, datetime | None]]:
            found = yield row(
                "SELECT count(*), min(created_at) FROM webhook_outbox WHERE state = 'pending'"
            )
            return int(found[0]), dt(found[1])

        return await self._query(script())


def insert_items(d: Dialect, items: Sequence[OutboxItem]) -> Script[None]:
    """Write outbox rows due at once, in the caller's transaction; an id already present
    is kept. PostgreSQL takes them in one statement (arrays), SQLite one row at a time."""
    if not items:
        return
    if d.numbered:
        yield count(
            "INSERT INTO webhook_outbox (id, tenant, type, body, created_at, next_at)"
            " SELECT u.id, u.tenant, u.type, u.body, u.created_at, u.created_at"
            " FROM unnest(?::text[], ?::text[], ?::text[], ?::bytea[], ?::float8[])"
            " WITH ORDINALITY AS u(id, tenant, type, body, created_at, n) ORDER BY u.n"
            " ON CONFLICT (id) DO NOTHING",
            [i.id for i in items],
            [i.tenant for i in items],
            [i.type for i in items],
            [i.body for i in items],
            [i.created_at.timestamp() for i in items],
        )
        return
    yield many(
        "INSERT INTO webhook_outbox (id, tenant, type, body, created_at, next_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        [(i.id, i.tenant, i.type, i.body, ts(i.created_at), ts(i.created_at)) for i in items],
    )
