"""PostgreSQL queries for the admin API and the support page (mixed into ``PostgresStore``).

The PostgreSQL dialect of ``store.sqlite_admin``, method by method: same signatures, same
results (the row types are ``core.records``'), same ordering (text keys sort ``COLLATE "C"``,
byte order, as SQLite compares them, whatever the database's locale). Does not own: the
pool, the schema or the translation of errors (``store.postgres``), nor what the rows mean
(``core``).

Every write runs in one transaction, so a change and the event that records it are
committed together or not at all. Where SQLite's single writer serialises a
read-then-write, the rows read are locked here (``FOR UPDATE``), since other nodes write
at the same time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.core.model import Event, EventType, Status, Suppression
from gateway.core.records import (
    AuditEntry,
    AuditOf,
    Erasure,
    MessageFilter,
    MessageRow,
    TenantSettings,
    hashed_address,
)
from gateway.store import rows
from gateway.store.mixins import PostgresQueries
from gateway.store.postgres_quota import FORGET

if TYPE_CHECKING:
    import asyncpg

    from gateway.core.records import RecipientView

_C = ' COLLATE "C"'


class _Args:
    """Positional parameters for a statement built piece by piece: ``add`` returns ``$n``."""

    def __init__(self, *values: Any) -> None:
        self.values: list[Any] = list(values)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _count(status: str) -> int:
    """The row count from a command tag (``UPDATE 3``, ``INSERT 0 1``)."""
    return int(status.rsplit(" ", 1)[-1])


async def _insert_event(c: asyncpg.Connection, event: Event) -> int:
    value = await c.fetchval(
        f"{rows.EVENT_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " RETURNING id",
        *rows.event_values(event),
    )
    return int(value)


async def _insert_audit(c: asyncpg.Connection, entry: AuditEntry) -> int:
    value = await c.fetchval(
        "INSERT INTO admin_audit (at, actor, action, target, detail)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        entry.at.timestamp(),
        entry.actor,
        entry.action,
        entry.target,
        json.dumps(entry.detail),
    )
    return int(value)


async def audited(c: asyncpg.Connection, audit: AuditOf | None, result: Any) -> None:
    """Write the audit entry ``audit`` builds from ``result``, in the same transaction."""
    entry = None if audit is None else audit(result)
    if entry is not None:
        await _insert_audit(c, entry)


async def upsert_credentials(
    c: asyncpg.Connection, tenant: str, username: str, secret_hash: str, now: datetime
) -> None:
    await c.execute(
        "INSERT INTO credentials (username, tenant, secret_hash, created_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO UPDATE SET"
        " secret_hash = excluded.secret_hash, tenant = excluded.tenant",
        username,
        tenant,
        secret_hash,
        now.timestamp(),
    )


async def upsert_suppression(c: asyncpg.Connection, suppression: Suppression) -> None:
    """Insert or replace the (tenant, address) suppression."""
    await c.execute(
        "INSERT INTO suppressions (tenant, address, reason, since, expires_at, event_id,"
        " note) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, address)"
        " DO UPDATE SET reason = excluded.reason, since = excluded.since,"
        " expires_at = excluded.expires_at, event_id = excluded.event_id,"
        " note = excluded.note",
        suppression.tenant,
        suppression.address,
        rows.suppression_reason_value(suppression.reason),
        suppression.since.timestamp(),
        rows.ts(suppression.expires_at),
        suppression.event_id,
        suppression.note,
    )


class PostgresAdminQueries(PostgresQueries):
    """Read and admin-write queries; relies on ``PostgresStore._run``."""

    # --- suppressions ---------------------------------------------------------------------

    async def find_hashed_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None:
        """The active suppression an erased address left behind (stored as its hash)."""
        key = hashed_address(address)
        row = await self._run(
            lambda c: c.fetchrow(
                f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE tenant = $1"
                " AND address = $2 AND (expires_at IS NULL OR expires_at > $3)",
                tenant,
                key,
                now.timestamp(),
            ),
            transaction=False,
        )
        return None if row is None else rows.suppression_from(row)

    async def active_suppressions(
        self, address: str, tenant: str | None, now: datetime
    ) -> list[Suppression]:
        """Active suppressions of an address, in clear or hashed, in one or every tenant."""
        args = _Args(address, hashed_address(address), now.timestamp())
        sql = (
            f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE address IN ($1, $2)"
            " AND (expires_at IS NULL OR expires_at > $3)"
        )
        if tenant is not None:
            sql += f" AND tenant = {args.add(tenant)}"
        sql += f" ORDER BY tenant{_C}"
        found = await self._run(lambda c: c.fetch(sql, *args.values), transaction=False)
        return [rows.suppression_from(row) for row in found]

    async def suppress_with_event(
        self,
        suppression: Suppression,
        event: Event,
        *,
        keep_permanent: bool = False,
        audit: AuditOf | None = None,
    ) -> tuple[Suppression, int] | None:
        """Add (or replace) a suppression and its ``suppressed`` event in one transaction.

        ``keep_permanent`` leaves an existing suppression without expiry untouched (then
        nothing is written and the result is ``None``). An ``event_id`` of ``None`` on
        ``suppression`` is set to the new event's id. ``audit`` builds the admin audit entry
        from the result, written in the same transaction.
        """

        async def work(c: asyncpg.Connection) -> tuple[Suppression, int] | None:
            if keep_permanent:
                row = await c.fetchrow(
                    "SELECT 1 FROM suppressions WHERE tenant = $1 AND address = $2"
                    " AND expires_at IS NULL FOR UPDATE",
                    suppression.tenant,
                    suppression.address,
                )
                if row is not None:
                    return None
            event_id = await _insert_event(c, event)
            linked = event_id if suppression.event_id is None else suppression.event_id
            stored = Suppression(
                suppression.tenant,
                suppression.address,
                suppression.reason,
                suppression.since,
                suppression.expires_at,
                linked,
                suppression.note,
            )
            await upsert_suppression(c, stored)
            await audited(c, audit, (stored, event_id))
            return stored, event_id

        return await self._run(work)

    async def lift_suppressions(
        self,
        address: str,
        tenant: str | None,
        make_event: Callable[[Suppression], Event],
        *,
        audit: AuditOf | None = None,
    ) -> list[tuple[Suppression, int]]:
        """Remove an address's suppressions (clear or hashed) and record one ``unsuppressed``
        event each; returns each lifted suppression with its event's id. ``audit`` builds
        the admin audit entry from the result, written in the same transaction."""
        args = _Args(address, hashed_address(address))
        sql = "DELETE FROM suppressions WHERE address IN ($1, $2)"
        if tenant is not None:
            sql += f" AND tenant = {args.add(tenant)}"
        sql += f" RETURNING {rows.SUPPRESSION_COLUMNS}"

        async def work(c: asyncpg.Connection) -> list[tuple[Suppression, int]]:
            deleted = [rows.suppression_from(row) for row in await c.fetch(sql, *args.values)]
            # In primary-key order, as SQLite's scan of the same rows returns them.
            deleted.sort(key=lambda s: (s.tenant.encode(), s.address.encode()))
            lifted = [(found, await _insert_event(c, make_event(found))) for found in deleted]
            await audited(c, audit, lifted)
            return lifted

        return await self._run(work)

    # --- history --------------------------------------------------------------------------

    async def event_by_id(self, event_id: int) -> Event | None:
        row = await self._run(
            lambda c: c.fetchrow(
                f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE id = $1", event_id
            ),
            transaction=False,
        )
        return None if row is None else rows.event_from(row)

    async def latest_recipient(self, address: str, tenant: str | None) -> RecipientView | None:
        """The most recently updated recipient row for an address."""
        args = _Args(address)
        sql = f"SELECT {rows.RECIPIENT_VIEW} WHERE r.address = $1"
        if tenant is not None:
            sql += f" AND r.tenant = {args.add(tenant)}"
        sql += " ORDER BY r.updated_at DESC, r.id DESC LIMIT 1"
        row = await self._run(lambda c: c.fetchrow(sql, *args.values), transaction=False)
        return None if row is None else rows.recipient_view_from(row)

    async def latest_rejection(self, address: str, tenant: str | None) -> Event | None:
        """The most recent intake refusal (``rejected`` event) of an address."""
        return await self.latest_event(address, tenant, EventType.REJECTED)

    async def latest_event(self, address: str, tenant: str | None, kind: EventType) -> Event | None:
        """The most recent event of one type for an address (``possible_typo``, …)."""
        args = _Args(address, kind.value)
        sql = f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE address = $1 AND type = $2"
        if tenant is not None:
            sql += f" AND tenant = {args.add(tenant)}"
        sql += " ORDER BY at DESC, id DESC LIMIT 1"
        row = await self._run(lambda c: c.fetchrow(sql, *args.values), transaction=False)
        return None if row is None else rows.event_from(row)

    # --- messages -------------------------------------------------------------------------

    async def list_messages(
        self, where: MessageFilter, limit: int, after: tuple[float, str] | None
    ) -> list[MessageRow]:
        """Messages newest first, filtered; ``after`` is the (received_at, queue_id) key
        of the last row of the previous page (keyset pagination: stable under inserts)."""
        args = _Args()
        sql = f"SELECT {rows.MESSAGE_COLUMNS} FROM messages m WHERE true"
        if where.tenant is not None:
            sql += f" AND m.tenant = {args.add(where.tenant)}"
        if where.since is not None:
            sql += f" AND m.received_at >= {args.add(where.since.timestamp())}"
        if where.until is not None:
            sql += f" AND m.received_at < {args.add(where.until.timestamp())}"
        inner = [
            f"r.{column} = {args.add(value)}"
            for column, value in (
                ("address", where.recipient),
                ("status", where.status),
                ("category", where.category),
            )
            if value is not None
        ]
        if inner:
            sql += (
                " AND EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND "
                + " AND ".join(inner)
                + ")"
            )
        if after is not None:
            at, queue_id = args.add(float(after[0])), args.add(after[1])
            sql += f" AND (m.received_at < {at} OR (m.received_at = {at}"
            sql += f" AND m.queue_id{_C} < {queue_id}))"
        sql += f" ORDER BY m.received_at DESC, m.queue_id{_C} DESC LIMIT {args.add(limit)}"
        found = await self._run(lambda c: c.fetch(sql, *args.values), transaction=False)
        return [rows.message_from(row) for row in found]

    async def message(self, queue_id: str) -> MessageRow | None:
        row = await self._run(
            lambda c: c.fetchrow(
                f"SELECT {rows.MESSAGE_COLUMNS} FROM messages m WHERE m.queue_id = $1", queue_id
            ),
            transaction=False,
        )
        return None if row is None else rows.message_from(row)

    async def recipients_summary(
        self, queue_ids: Sequence[str]
    ) -> dict[str, list[tuple[str, str, str | None]]]:
        """queue id -> [(address, status, category)] for a page of messages."""
        if not queue_ids:
            return {}
        found = await self._run(
            lambda c: c.fetch(
                "SELECT queue_id, address, status, category FROM recipients"
                " WHERE queue_id = ANY($1::text[]) ORDER BY id",
                list(queue_ids),
            ),
            transaction=False,
        )
        summary: dict[str, list[tuple[str, str, str | None]]] = {}
        for queue_id, address, status, category in found:
            summary.setdefault(queue_id, []).append((address, status, category))
        return summary

    async def set_held(
        self,
        queue_id: str,
        held: bool,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None:
        """Hold or release a message: the relay claims no recipient of a held message.

        Pending recipients show ``held`` while held; on release they return to ``queued``
        (never attempted) or ``deferred``, due at once.

        ``audit`` builds the admin audit entry from the count (or ``None``), written in the
        same transaction.

        Returns:
            The number of pending recipients affected, or ``None`` if there is no message.
        """

        async def work(c: asyncpg.Connection) -> int | None:
            count = await change(c)
            await audited(c, audit, count)
            return count

        async def change(c: asyncpg.Connection) -> int | None:
            # The message row's lock serialises holds, releases and cancels of one message.
            if await c.fetchrow(_LOCK_MESSAGE, queue_id) is None:
                return None
            pending = await c.fetch(
                f"SELECT {rows.RECIPIENT_VIEW} WHERE r.queue_id = $1"
                " AND r.status = ANY($2::text[]) AND r.due_at IS NOT NULL ORDER BY r.id"
                " FOR UPDATE OF r",
                queue_id,
                list(rows.PENDING_STATUSES),
            )
            if held and not pending:
                return 0  # nothing left to hold: leave the message as it is
            await c.execute(
                "UPDATE messages SET held = $1 WHERE queue_id = $2", int(held), queue_id
            )
            for row in pending:
                view = rows.recipient_view_from(row)
                event = make_event(view)
                status = "held" if held else ("deferred" if view.attempts else "queued")
                at = event.at.timestamp()
                await c.execute(
                    "UPDATE recipients SET status = $1, updated_at = $2,"
                    " due_at = CASE WHEN $3 THEN due_at ELSE least(due_at, $2) END"
                    " WHERE id = $4",
                    status,
                    at,
                    held,
                    view.recipient_id,
                )
                await _insert_event(c, event)
            return len(pending)

        return await self._run(work)

    async def cancel_message(
        self,
        queue_id: str,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None:
        """Take a message's pending recipients out of the queue, keeping their history.

        Each pending recipient gets the final status ``expired`` and the event
        ``make_event`` builds; a lease held by a relay node is cut (``record_outcomes``
        fences on it), so an attempt in flight cannot record its outcome over this one.
        The content is deleted once nothing is pending.

        ``audit`` builds the admin audit entry from the count (or ``None``), written in the
        same transaction.

        Returns:
            The number of recipients cancelled, or ``None`` if there is no message.
        """

        async def work(c: asyncpg.Connection) -> int | None:
            count = await change(c)
            await audited(c, audit, count)
            return count

        async def change(c: asyncpg.Connection) -> int | None:
            if await c.fetchrow(_LOCK_MESSAGE, queue_id) is None:
                return None
            pending = await c.fetch(
                f"SELECT {rows.RECIPIENT_VIEW} WHERE r.queue_id = $1 AND r.due_at IS NOT NULL"
                " ORDER BY r.id FOR UPDATE OF r",
                queue_id,
            )
            for row in pending:
                view = rows.recipient_view_from(row)
                event = make_event(view)
                await c.execute(
                    "UPDATE recipients SET status = $1, due_at = NULL, lease_owner = NULL,"
                    " updated_at = $2, last_reply = $3 WHERE id = $4",
                    Status.EXPIRED.value,
                    event.at.timestamp(),
                    event.text,
                    view.recipient_id,
                )
                await _insert_event(c, event)
            await c.execute(
                "UPDATE messages SET content = NULL, held = 0 WHERE queue_id = $1", queue_id
            )
            return len(pending)

        return await self._run(work)

    # --- tenants --------------------------------------------------------------------------

    async def create_tenant(
        self,
        settings: TenantSettings,
        now: datetime,
        *,
        credentials: tuple[str, str] | None = None,
        audit: AuditOf | None = None,
    ) -> bool:
        """Insert a tenant with its settings; ``False`` if the name is taken. With its
        ``credentials`` (username, secret hash) and the admin audit entry ``audit`` builds,
        in one transaction (``SqliteStore.create_tenant``)."""
        t = settings.tenant

        async def work(c: asyncpg.Connection) -> bool:
            created = _count(await insert(c)) == 1
            if created and credentials is not None:
                await upsert_credentials(c, t.name, *credentials, now)
            await audited(c, audit, created)
            return created

        def insert(c: asyncpg.Connection) -> Any:
            return c.execute(
                "INSERT INTO tenants (name, allowed_sender_domains, hourly_quota, daily_quota,"
                " created_at, list_unsubscribe, bounce_notice, webhook_url, webhook_secret,"
                " failure_threshold, failure_window_seconds)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                " ON CONFLICT (name) DO NOTHING",
                t.name,
                ",".join(t.allowed_sender_domains),
                t.hourly_quota,
                t.daily_quota,
                now.timestamp(),
                int(settings.list_unsubscribe),
                int(settings.bounce_notice),
                settings.webhook_url,
                settings.webhook_secret,
                settings.failure_threshold,
                None
                if settings.failure_window is None
                else settings.failure_window.total_seconds(),
            )

        return await self._run(work)

    async def tenant_settings(self, name: str) -> TenantSettings | None:
        async def work(c: asyncpg.Connection) -> TenantSettings | None:
            row = await c.fetchrow(
                f"SELECT {rows.TENANT_COLUMNS} FROM tenants WHERE name = $1", name
            )
            if row is None:
                return None
            users = await c.fetch(
                f"SELECT username FROM credentials WHERE tenant = $1 ORDER BY username{_C}",
                name,
            )
            return rows.settings_from(row, tuple(u[0] for u in users))

        return await self._run(work)

    async def list_tenant_settings(self) -> list[TenantSettings]:
        async def work(c: asyncpg.Connection) -> list[TenantSettings]:
            users: dict[str, list[str]] = {}
            for tenant, username in await c.fetch(
                f"SELECT tenant, username FROM credentials ORDER BY username{_C}"
            ):
                users.setdefault(tenant, []).append(username)
            found = await c.fetch(f"SELECT {rows.TENANT_COLUMNS} FROM tenants ORDER BY name{_C}")
            return [rows.settings_from(row, tuple(users.get(row[0], ()))) for row in found]

        return await self._run(work)

    async def update_tenant_settings(
        self, name: str, changes: dict[str, Any], *, audit: AuditOf | None = None
    ) -> bool:
        """Apply ``changes`` (keys of ``rows.SETTINGS_COLUMNS``); ``False`` if no tenant.
        ``audit`` builds the admin audit entry from the result, in the same transaction."""
        args = _Args()
        assignments = [
            # A KeyError here is a bug: the keys are the API's settings.
            f"{rows.SETTINGS_COLUMNS[key]} = {args.add(rows.column_value(value))}"
            for key, value in changes.items()
        ]
        sql = f"UPDATE tenants SET {', '.join(assignments)} WHERE name = {args.add(name)}"

        async def work(c: asyncpg.Connection) -> bool:
            if assignments:
                found = _count(await c.execute(sql, *args.values)) == 1
            else:
                found = await c.fetchrow("SELECT 1 FROM tenants WHERE name = $1", name) is not None
            await audited(c, audit, found)
            return found

        return await self._run(work, transaction=bool(assignments) or audit is not None)

    # --- statistics -----------------------------------------------------------------------

    async def oldest_waiting_recipient(self) -> datetime | None:
        """When the message of the oldest recipient still waiting (queued or deferred) was
        accepted; ``None`` when nothing waits. Held recipients are left out."""
        value = await self._run(
            lambda c: c.fetchval(rows.OLDEST_WAITING),
            transaction=False,
        )
        return rows.dt(value)

    async def event_counts(self, since: datetime) -> list[tuple[str, str, str | None, str, int]]:
        """(tenant, type, category, remote host, count) of the events since ``since``."""
        found = await self._run(
            lambda c: c.fetch(
                "SELECT tenant, type, category, remote_host, count(*) FROM events WHERE at >= $1"
                " GROUP BY tenant, type, category, remote_host",
                since.timestamp(),
            ),
            transaction=False,
        )
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in found]

    async def recipient_counts(self, since: datetime) -> list[tuple[str, str, str | None, int]]:
        """(tenant, status, category, count) of recipient rows updated since ``since``."""
        found = await self._run(
            lambda c: c.fetch(
                "SELECT tenant, status, category, count(*) FROM recipients"
                " WHERE updated_at >= $1 GROUP BY tenant, status, category",
                since.timestamp(),
            ),
            transaction=False,
        )
        return [(r[0], r[1], r[2], int(r[3])) for r in found]

    # --- audit ----------------------------------------------------------------------------

    async def audit(self, entry: AuditEntry) -> int:
        value: int = await self._run(lambda c: _insert_audit(c, entry))
        return value

    async def list_audit(self, limit: int, before_id: int | None) -> list[AuditEntry]:
        args = _Args()
        sql = "SELECT id, at, actor, action, target, detail FROM admin_audit"
        if before_id is not None:
            sql += f" WHERE id < {args.add(before_id)}"
        sql += f" ORDER BY id DESC LIMIT {args.add(limit)}"
        found = await self._run(lambda c: c.fetch(sql, *args.values), transaction=False)
        return [AuditEntry(rows.utc(r[1]), r[2], r[3], r[4], json.loads(r[5]), r[0]) for r in found]

    # --- erasure and retention ------------------------------------------------------------

    async def erase_address(
        self, address: str, now: datetime, *, audit: AuditOf | None = None
    ) -> Erasure:
        """Erase what the store holds on an address (LGPD art. 18, VI); see
        ``SqliteStore.erase_address`` for what is deleted, hashed and kept. ``audit`` builds
        the admin audit entry from the result, in the same transaction."""
        key = hashed_address(address)
        at = now.timestamp()

        async def work(c: asyncpg.Connection) -> Erasure:
            queue_ids = [
                r[0]
                for r in await c.fetch(
                    "SELECT DISTINCT queue_id FROM recipients WHERE address = $1", address
                )
            ]
            events = _count(await c.execute("DELETE FROM events WHERE address = $1", address))
            cancelled = _count(
                await c.execute(
                    "UPDATE recipients SET status = 'expired', due_at = NULL,"
                    " lease_owner = NULL, updated_at = $1"
                    " WHERE address = $2 AND due_at IS NOT NULL",
                    at,
                    address,
                )
            )
            hashed = _count(
                await c.execute(
                    "UPDATE recipients SET address = $1, last_reply = '' WHERE address = $2",
                    key,
                    address,
                )
            )
            await c.execute(
                "DELETE FROM suppressions WHERE address = $1 AND expires_at IS NOT NULL"
                " AND expires_at <= $2",
                address,
                at,
            )
            suppressions = _count(
                await c.execute(
                    "INSERT INTO suppressions (tenant, address, reason, since, expires_at,"
                    " event_id, note) SELECT tenant, $1, reason, since, expires_at, NULL, ''"
                    " FROM suppressions WHERE address = $2 ON CONFLICT (tenant, address)"
                    " DO UPDATE SET reason = excluded.reason, since = excluded.since,"
                    " expires_at = excluded.expires_at",
                    key,
                    address,
                )
            )
            await c.execute("DELETE FROM suppressions WHERE address = $1", address)
            await c.execute(FORGET, address)  # its quota holds name it in clear
            contents = _count(
                await c.execute(
                    "UPDATE messages m SET content = NULL WHERE m.queue_id = ANY($1::text[])"
                    " AND m.content IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recipients r"
                    " WHERE r.queue_id = m.queue_id AND r.due_at IS NOT NULL)",
                    queue_ids,
                )
            )
            erased = Erasure(events, hashed, cancelled, suppressions, contents)
            await audited(c, audit, erased)
            return erased

        return await self._run(work)

    async def purge_content(self, before: datetime, limit: int) -> int:
        """Delete the content of up to ``limit`` messages final since before ``before``.

        A message is final when none of its recipients waits for an attempt; its last
        recipient update is the time of its final status.
        """
        cutoff = before.timestamp()
        status = await self._run(
            lambda c: c.execute(
                "UPDATE messages SET content = NULL WHERE queue_id IN (SELECT m.queue_id FROM"
                " messages m WHERE m.content IS NOT NULL AND m.received_at < $1 AND NOT EXISTS"
                " (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND"
                " (r.due_at IS NOT NULL OR r.updated_at >= $1)) LIMIT $2"
                " FOR UPDATE SKIP LOCKED)",
                cutoff,
                limit,
            )
        )
        return _count(status)

    async def purge_events(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events older than ``before``."""
        status = await self._run(
            lambda c: c.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 LIMIT $2"
                " FOR UPDATE SKIP LOCKED)",
                before.timestamp(),
                limit,
            )
        )
        return _count(status)


_LOCK_MESSAGE = "SELECT 1 FROM messages WHERE queue_id = $1 FOR UPDATE"
