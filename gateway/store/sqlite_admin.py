"""SQLite queries for the admin API and the support page (mixed into ``SqliteStore``).

Owns: listing and filtering messages, recipients, suppressions and statistics for the
admin API; queue control (hold, release, delete); unblocking with its event; tenant
settings; the admin audit trail; erasure of an address (LGPD) and the retention purges the
janitor runs. Does not own: the connection, the writer or the schema (``store.sqlite``),
nor what the rows mean (``core``).

Every write runs as one function inside the store's group-commit writer, so a change and
the event that records it are committed together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
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
from gateway.store import rows as _rows
from gateway.store.mixins import SqliteQueries
from gateway.store.sqlite_quota import forget_holds
from gateway.store.sqlite_writes import (
    audited,
    insert_audit,
    insert_event,
    upsert_credentials,
    upsert_suppression,
)

if TYPE_CHECKING:
    from gateway.core.records import RecipientView

# The records this module's queries return, where the admin API and older callers import
# them from (they are ``core.records``').
__all__ = [
    "AdminQueries",
    "AuditEntry",
    "AuditOf",
    "Erasure",
    "MessageFilter",
    "MessageRow",
    "TenantSettings",
    "hashed_address",
]

class AdminQueries(SqliteQueries):
    """Read and admin-write queries; relies on ``SqliteStore._read`` and ``._write``."""

    # --- suppressions ---------------------------------------------------------------------

    async def find_hashed_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None:
        """The active suppression an erased address left behind (stored as its hash).

        Args:
            tenant: the tenant.
            address: the canonical address in clear; it is hashed here.
            now: suppressions that expired before ``now`` do not count.
        """
        key = hashed_address(address)
        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE tenant = ?"
                " AND address = ? AND (expires_at IS NULL OR expires_at > ?)",
                (tenant, key, now.timestamp()),
            ).fetchone()
        )
        return None if row is None else _rows.suppression_from(row)

    async def active_suppressions(
        self, address: str, tenant: str | None, now: datetime
    ) -> list[Suppression]:
        """Active suppressions of an address, in clear or hashed, in one or every tenant."""
        sql = (
            f"SELECT {_rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE address IN (?, ?)"
            " AND (expires_at IS NULL OR expires_at > ?)"
        )
        args: list[Any] = [address, hashed_address(address), now.timestamp()]
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        sql += " ORDER BY tenant"
        rows = await self._read(lambda c: c.execute(sql, args).fetchall())
        return [_rows.suppression_from(row) for row in rows]

    async def suppress_with_event(
        self,
        suppression: Suppression,
        event: Event,
        *,
        keep_permanent: bool = False,
        audit: AuditOf | None = None,
    ) -> tuple[Suppression, int] | None:
        """Add (or replace) a suppression and its ``suppressed`` event in one transaction.

        Args:
            suppression: the row; an ``event_id`` of ``None`` is set to the new event's id
                (the policy keeps the id of the outcome that caused the suppression).
            event: the event recording it.
            keep_permanent: leave an existing suppression without expiry untouched (an
                opt-out must not overwrite a complaint); then nothing is written.
            audit: builds the admin audit entry from the result, written in the same
                transaction (issue 13).

        Returns:
            The stored suppression and the event id, or ``None`` when one was kept.
        """

        def work(c: sqlite3.Connection) -> tuple[Suppression, int] | None:
            if keep_permanent:
                row = c.execute(
                    "SELECT 1 FROM suppressions WHERE tenant = ? AND address = ?"
                    " AND expires_at IS NULL",
                    (suppression.tenant, suppression.address),
                ).fetchone()
                if row is not None:
                    return None
            event_id = insert_event(c, event)
            stored = suppression
            if suppression.event_id is None:
                stored = replace(suppression, event_id=event_id)
            upsert_suppression(c, stored)
            audited(c, audit, (stored, event_id))
            return stored, event_id

        result: tuple[Suppression, int] | None = await self._write(work)
        return result

    async def lift_suppressions(
        self,
        address: str,
        tenant: str | None,
        make_event: Callable[[Suppression], Event],
        *,
        audit: AuditOf | None = None,
    ) -> list[tuple[Suppression, int]]:
        """Remove an address's suppressions (clear or hashed) and record one event each.

        The events are ``unsuppressed``: the auto-block policy reads one as a counter reset.

        Args:
            address: the canonical address.
            tenant: one tenant, or ``None`` for every tenant.
            make_event: builds the event for each lifted suppression.
            audit: builds the admin audit entry from the result, written in the same
                transaction.

        Returns:
            Each lifted suppression with its event's id (empty when there was none).
        """

        def work(c: sqlite3.Connection) -> list[tuple[Suppression, int]]:
            sql = f"SELECT {_rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE address IN (?, ?)"
            args: list[Any] = [address, hashed_address(address)]
            if tenant is not None:
                sql += " AND tenant = ?"
                args.append(tenant)
            lifted = []
            for row in c.execute(sql, args).fetchall():
                found = _rows.suppression_from(row)
                c.execute(
                    "DELETE FROM suppressions WHERE tenant = ? AND address = ?",
                    (found.tenant, found.address),
                )
                lifted.append((found, insert_event(c, make_event(found))))
            audited(c, audit, lifted)
            return lifted

        result: list[tuple[Suppression, int]] = await self._write(work)
        return result

    # --- history --------------------------------------------------------------------------

    async def event_by_id(self, event_id: int) -> Event | None:
        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_rows.EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
            ).fetchone()
        )
        return None if row is None else _rows.event_from(row)

    async def latest_recipient(self, address: str, tenant: str | None) -> RecipientView | None:
        """The most recently updated recipient row for an address."""
        sql = f"SELECT {_rows.RECIPIENT_VIEW} WHERE r.address = ?"
        args: list[Any] = [address]
        if tenant is not None:
            sql += " AND r.tenant = ?"
            args.append(tenant)
        sql += " ORDER BY r.updated_at DESC, r.id DESC LIMIT 1"
        row = await self._read(lambda c: c.execute(sql, args).fetchone())
        return None if row is None else _rows.recipient_view_from(row)

    async def latest_rejection(self, address: str, tenant: str | None) -> Event | None:
        """The most recent intake refusal (``rejected`` event) of an address."""
        return await self.latest_event(address, tenant, EventType.REJECTED)

    async def latest_event(self, address: str, tenant: str | None, kind: EventType) -> Event | None:
        """The most recent event of one type for an address (``possible_typo``, …)."""
        sql = f"SELECT {_rows.EVENT_COLUMNS} FROM events WHERE address = ? AND type = ?"
        args: list[Any] = [address, kind.value]
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        sql += " ORDER BY at DESC, id DESC LIMIT 1"
        row = await self._read(lambda c: c.execute(sql, args).fetchone())
        return None if row is None else _rows.event_from(row)

    # --- messages -------------------------------------------------------------------------

    async def list_messages(
        self, where: MessageFilter, limit: int, after: tuple[float, str] | None
    ) -> list[MessageRow]:
        """Messages newest first, filtered; ``after`` is the (received_at, queue_id) key
        of the last row of the previous page (keyset pagination: stable under inserts)."""
        sql = f"SELECT {_rows.MESSAGE_COLUMNS} FROM messages m WHERE 1 = 1"
        args: list[Any] = []
        if where.tenant is not None:
            sql += " AND m.tenant = ?"
            args.append(where.tenant)
        if where.since is not None:
            sql += " AND m.received_at >= ?"
            args.append(where.since.timestamp())
        if where.until is not None:
            sql += " AND m.received_at < ?"
            args.append(where.until.timestamp())
        inner, inner_args = [], []
        for column, value in (
            ("address", where.recipient),
            ("status", where.status),
            ("category", where.category),
        ):
            if value is not None:
                inner.append(f"r.{column} = ?")
                inner_args.append(value)
        if inner:
            sql += (
                " AND EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND "
                + " AND ".join(inner)
                + ")"
            )
            args.extend(inner_args)
        if after is not None:
            sql += " AND (m.received_at < ? OR (m.received_at = ? AND m.queue_id < ?))"
            args.extend([after[0], after[0], after[1]])
        sql += " ORDER BY m.received_at DESC, m.queue_id DESC LIMIT ?"
        args.append(limit)
        rows = await self._read(lambda c: c.execute(sql, args).fetchall())
        return [_rows.message_from(row) for row in rows]

    async def message(self, queue_id: str) -> MessageRow | None:
        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_rows.MESSAGE_COLUMNS} FROM messages m WHERE m.queue_id = ?", (queue_id,)
            ).fetchone()
        )
        return None if row is None else _rows.message_from(row)

    async def recipients_summary(
        self, queue_ids: Sequence[str]
    ) -> dict[str, list[tuple[str, str, str | None]]]:
        """queue id -> [(address, status, category)] for a page of messages."""
        if not queue_ids:
            return {}
        marks = ",".join("?" for _ in queue_ids)
        rows = await self._read(
            lambda c: c.execute(
                "SELECT queue_id, address, status, category FROM recipients"
                f" WHERE queue_id IN ({marks}) ORDER BY id",
                list(queue_ids),
            ).fetchall()
        )
        found: dict[str, list[tuple[str, str, str | None]]] = {}
        for queue_id, address, status, category in rows:
            found.setdefault(queue_id, []).append((address, status, category))
        return found

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

        def work(c: sqlite3.Connection) -> int | None:
            count = change(c)
            audited(c, audit, count)
            return count

        def change(c: sqlite3.Connection) -> int | None:
            if (
                c.execute("SELECT 1 FROM messages WHERE queue_id = ?", (queue_id,)).fetchone()
                is None
            ):
                return None
            marks = ",".join("?" for _ in _rows.PENDING_STATUSES)
            rows = c.execute(
                f"SELECT {_rows.RECIPIENT_VIEW} WHERE r.queue_id = ? AND r.status IN ({marks})"
                " AND r.due_at IS NOT NULL",
                (queue_id, *_rows.PENDING_STATUSES),
            ).fetchall()
            if held and not rows:
                return 0  # nothing left to hold: leave the message as it is
            c.execute("UPDATE messages SET held = ? WHERE queue_id = ?", (int(held), queue_id))
            for row in rows:
                view = _rows.recipient_view_from(row)
                event = make_event(view)
                status = "held" if held else ("deferred" if view.attempts else "queued")
                c.execute(
                    "UPDATE recipients SET status = ?, updated_at = ?,"
                    " due_at = CASE WHEN ? THEN due_at ELSE min(due_at, ?) END WHERE id = ?",
                    (status, event.at.timestamp(), held, event.at.timestamp(), view.recipient_id),
                )
                insert_event(c, event)
            return len(rows)

        result: int | None = await self._write(work)
        return result

    async def cancel_message(
        self,
        queue_id: str,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None:
        """Take a message's pending recipients out of the queue, keeping their history.

        Each pending recipient gets the final status ``expired`` and the event
        ``make_event`` builds; a lease held by a relay node is cut, so an attempt in flight
        cannot record its outcome over this one. The content is deleted once nothing is
        pending.

        ``audit`` builds the admin audit entry from the count (or ``None``), written in the
        same transaction.

        Returns:
            The number of recipients cancelled, or ``None`` if there is no message.
        """

        def work(c: sqlite3.Connection) -> int | None:
            count = change(c)
            audited(c, audit, count)
            return count

        def change(c: sqlite3.Connection) -> int | None:
            if (
                c.execute("SELECT 1 FROM messages WHERE queue_id = ?", (queue_id,)).fetchone()
                is None
            ):
                return None
            rows = c.execute(
                f"SELECT {_rows.RECIPIENT_VIEW} WHERE r.queue_id = ? AND r.due_at IS NOT NULL",
                (queue_id,),
            ).fetchall()
            for row in rows:
                view = _rows.recipient_view_from(row)
                event = make_event(view)
                c.execute(
                    "UPDATE recipients SET status = ?, due_at = NULL, lease_owner = NULL,"
                    " updated_at = ?, last_reply = ? WHERE id = ?",
                    (Status.EXPIRED.value, event.at.timestamp(), event.text, view.recipient_id),
                )
                insert_event(c, event)
            c.execute(
                "UPDATE messages SET content = NULL, held = 0 WHERE queue_id = ?", (queue_id,)
            )
            return len(rows)

        result: int | None = await self._write(work)
        return result

    # --- tenants --------------------------------------------------------------------------

    async def create_tenant(
        self,
        settings: TenantSettings,
        now: datetime,
        *,
        credentials: tuple[str, str] | None = None,
        audit: AuditOf | None = None,
    ) -> bool:
        """Insert a tenant with its settings; ``False`` if the name is taken.

        Args:
            settings: the tenant and its settings.
            now: its creation time.
            credentials: (username, secret hash) of its SMTP login, written with it.
            audit: builds the admin audit entry from the result; the tenant, its credentials
                and the entry commit in one transaction (issue 13).
        """

        def work(c: sqlite3.Connection) -> bool:
            created = insert(c)
            if created and credentials is not None:
                upsert_credentials(c, settings.tenant.name, *credentials, now)
            audited(c, audit, created)
            return created

        def insert(c: sqlite3.Connection) -> bool:
            t = settings.tenant
            cur = c.execute(
                "INSERT INTO tenants (name, allowed_sender_domains, hourly_quota, daily_quota,"
                " created_at, list_unsubscribe, bounce_notice, webhook_url, webhook_secret,"
                " failure_threshold, failure_window_seconds)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (
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
                ),
            )
            return cur.rowcount == 1

        result: bool = await self._write(work)
        return result

    async def tenant_settings(self, name: str) -> TenantSettings | None:
        def work(c: sqlite3.Connection) -> TenantSettings | None:
            row = c.execute(
                f"SELECT {_rows.TENANT_COLUMNS} FROM tenants WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return None
            users = c.execute(
                "SELECT username FROM credentials WHERE tenant = ? ORDER BY username", (name,)
            ).fetchall()
            return _rows.settings_from(row, tuple(u[0] for u in users))

        return await self._read(work)

    async def list_tenant_settings(self) -> list[TenantSettings]:
        def work(c: sqlite3.Connection) -> list[TenantSettings]:
            users: dict[str, list[str]] = {}
            for tenant, username in c.execute(
                "SELECT tenant, username FROM credentials ORDER BY username"
            ).fetchall():
                users.setdefault(tenant, []).append(username)
            rows = c.execute(f"SELECT {_rows.TENANT_COLUMNS} FROM tenants ORDER BY name").fetchall()
            return [_rows.settings_from(row, tuple(users.get(row[0], ()))) for row in rows]

        return await self._read(work)

    async def update_tenant_settings(
        self, name: str, changes: dict[str, Any], *, audit: AuditOf | None = None
    ) -> bool:
        """Apply ``changes`` (keys of :data:`SETTINGS_COLUMNS`); ``False`` if no tenant.
        ``audit`` builds the admin audit entry from the result, in the same transaction."""
        assignments, args = [], []
        for key, value in changes.items():
            column = _rows.SETTINGS_COLUMNS[key]  # a KeyError here is a programming error
            assignments.append(f"{column} = ?")
            args.append(_rows.column_value(value))

        def work(c: sqlite3.Connection) -> bool:
            found = update(c)
            audited(c, audit, found)
            return found

        def update(c: sqlite3.Connection) -> bool:
            if not assignments:
                return (
                    c.execute("SELECT 1 FROM tenants WHERE name = ?", (name,)).fetchone()
                    is not None
                )
            cur = c.execute(
                f"UPDATE tenants SET {', '.join(assignments)} WHERE name = ?", (*args, name)
            )
            return cur.rowcount == 1

        result: bool = await self._write(work)
        return result

    # --- statistics -----------------------------------------------------------------------

    async def oldest_waiting_recipient(self) -> datetime | None:
        """When the message of the oldest recipient still waiting (queued or deferred) was
        accepted; ``None`` when nothing waits (the ``gateway_queue_oldest_age_seconds`` gauge).

        Held recipients are left out: an operator parked them on purpose.
        """
        row = await self._read(lambda c: c.execute(_rows.OLDEST_WAITING).fetchone())
        return None if row is None or row[0] is None else _rows.utc(row[0])

    async def event_counts(self, since: datetime) -> list[tuple[str, str, str | None, str, int]]:
        """(tenant, type, category, remote host, count) of the events since ``since``."""
        rows = await self._read(
            lambda c: c.execute(
                "SELECT tenant, type, category, remote_host, count(*) FROM events WHERE at >= ?"
                " GROUP BY tenant, type, category, remote_host",
                (since.timestamp(),),
            ).fetchall()
        )
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    async def recipient_counts(self, since: datetime) -> list[tuple[str, str, str | None, int]]:
        """(tenant, status, category, count) of recipient rows updated since ``since``."""
        rows = await self._read(
            lambda c: c.execute(
                "SELECT tenant, status, category, count(*) FROM recipients WHERE updated_at >= ?"
                " GROUP BY tenant, status, category",
                (since.timestamp(),),
            ).fetchall()
        )
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    # --- audit ----------------------------------------------------------------------------

    async def audit(self, entry: AuditEntry) -> int:
        result: int = await self._write(lambda c: insert_audit(c, entry))
        return result

    async def list_audit(self, limit: int, before_id: int | None) -> list[AuditEntry]:
        sql = "SELECT id, at, actor, action, target, detail FROM admin_audit"
        args: list[Any] = []
        if before_id is not None:
            sql += " WHERE id < ?"
            args.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        rows = await self._read(lambda c: c.execute(sql, args).fetchall())
        return [AuditEntry(_rows.utc(r[1]), r[2], r[3], r[4], json.loads(r[5]), r[0]) for r in rows]

    # --- erasure and retention ------------------------------------------------------------

    async def erase_address(
        self, address: str, now: datetime, *, audit: AuditOf | None = None
    ) -> Erasure:
        """Erase what the store holds on an address (LGPD art. 18, VI).

        ``audit`` builds the admin audit entry from the result, in the same transaction.

        Events about it are deleted, and its quota holds (given back); recipient rows keep
        their history under the address's hash (pending ones are cancelled: mail cannot go
        to a hash); an active suppression is kept under the hash, so the address stays
        blocked when it comes back (:meth:`find_hashed_suppression`); expired ones are
        deleted; message contents that named it are deleted once none of their recipients
        is pending.
        """
        key = hashed_address(address)

        def work(c: sqlite3.Connection) -> Erasure:
            at = now.timestamp()
            queue_ids = [
                r[0]
                for r in c.execute(
                    "SELECT DISTINCT queue_id FROM recipients WHERE address = ?", (address,)
                ).fetchall()
            ]
            events = c.execute("DELETE FROM events WHERE address = ?", (address,)).rowcount
            cancelled = c.execute(
                "UPDATE recipients SET status = 'expired', due_at = NULL, lease_owner = NULL,"
                " updated_at = ? WHERE address = ? AND due_at IS NOT NULL",
                (at, address),
            ).rowcount
            hashed = c.execute(
                "UPDATE recipients SET address = ?, last_reply = '' WHERE address = ?",
                (key, address),
            ).rowcount
            c.execute(
                "DELETE FROM suppressions WHERE address = ? AND expires_at IS NOT NULL"
                " AND expires_at <= ?",
                (address, at),
            )
            suppressions = c.execute(
                "INSERT INTO suppressions (tenant, address, reason, since, expires_at, event_id,"
                " note) SELECT tenant, ?, reason, since, expires_at, NULL, '' FROM suppressions"
                " WHERE address = ? ON CONFLICT (tenant, address) DO UPDATE SET"
                " reason = excluded.reason, since = excluded.since,"
                " expires_at = excluded.expires_at",
                (key, address),
            ).rowcount
            c.execute("DELETE FROM suppressions WHERE address = ?", (address,))
            forget_holds(c, address)  # its quota holds name it in clear
            contents = 0
            for queue_id in queue_ids:
                contents += c.execute(
                    "UPDATE messages SET content = NULL WHERE queue_id = ? AND content IS NOT NULL"
                    " AND NOT EXISTS (SELECT 1 FROM recipients WHERE queue_id = ?"
                    " AND due_at IS NOT NULL)",
                    (queue_id, queue_id),
                ).rowcount
            erased = Erasure(events, hashed, cancelled, suppressions, contents)
            audited(c, audit, erased)
            return erased

        result: Erasure = await self._write(work)
        return result

    async def purge_content(self, before: datetime, limit: int) -> int:
        """Delete the content of up to ``limit`` messages final since before ``before``.

        A message is final when none of its recipients waits for an attempt; its last
        recipient update is the time of its final status.
        """
        cutoff = before.timestamp()

        def work(c: sqlite3.Connection) -> int:
            return c.execute(
                "UPDATE messages SET content = NULL WHERE queue_id IN (SELECT m.queue_id FROM"
                " messages m WHERE m.content IS NOT NULL AND m.received_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND"
                " (r.due_at IS NOT NULL OR r.updated_at >= ?)) LIMIT ?)",
                (cutoff, cutoff, limit),
            ).rowcount

        result: int = await self._write(work)
        return result

    async def purge_events(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events older than ``before``."""

        def work(c: sqlite3.Connection) -> int:
            return c.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? LIMIT ?)",
                (before.timestamp(), limit),
            ).rowcount

        result: int = await self._write(work)
        return result

