"""The admin API's and the support page's queries, written once for both stores.

Owns: listing and filtering messages, recipients, suppressions and statistics for the
admin API; queue control (hold, release, delete); suppressing and unblocking with their
events; the admin audit trail; erasure of an address (LGPD) and the retention purges. (A
tenant's settings are ``store.queries``'.)
Each method is a ``store.sql`` script the store runs in one transaction (``_transact``) or
as a read (``_query``), so a change, the events that record it and its admin audit entry
commit together or not at all (issue 13). Where SQLite's single writer serialises a
read-then-write, PostgreSQL locks the rows read (``@LOCK``), since other nodes write at the
same time. Text keys sort in byte order in both (``@C``). Does not own: connections,
transactions or errors (the stores), nor what the rows mean (``core``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from gateway.core.model import Event, EventType, Status, Suppression
from gateway.core.records import (
    AuditEntry,
    AuditOf,
    Erasure,
    MessageFilter,
    MessageRow,
    RecipientView,
    hashed_address,
)
from gateway.core.streams import Scope
from gateway.store import feedback_queries, rows
from gateway.store.mixins import Queries
from gateway.store.sql import Script, changed, count, every, one, row, single
from gateway.store.sql import rows as fetch
from gateway.store.stream_queries import start_probation
from gateway.store.writes import (
    audited,
    forget_holds,
    insert_audit,
    insert_event,
    upsert_suppression,
)

_ACTIVE = "(expires_at IS NULL OR expires_at > ?)"
_PENDING = "r.status IN ('queued', 'deferred', 'held') AND r.due_at IS NOT NULL"


class AdminQueries(Queries):
    """Read and admin-write queries; relies on the store's ``_query`` and ``_transact``."""

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
        found = await self._query(
            one(
                f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE tenant = ?"
                f" AND address = ? AND {_ACTIVE}",
                tenant,
                hashed_address(address),
                now.timestamp(),
            )
        )
        return None if found is None else rows.suppression_from(found)

    async def active_suppressions(
        self, address: str, tenant: str | None, now: datetime
    ) -> list[Suppression]:
        """Active suppressions of an address, in clear or hashed, in one or every tenant."""
        sql = f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE address IN (?, ?)"
        args: list[Any] = [address, hashed_address(address)]
        sql += f" AND {_ACTIVE}"
        args.append(now.timestamp())
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        found = await self._query(every(sql + " ORDER BY tenant@C", *args))
        return [rows.suppression_from(r) for r in found]

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

        def script() -> Script[tuple[Suppression, int] | None]:
            if keep_permanent:
                kept = yield row(
                    "SELECT 1 FROM suppressions WHERE tenant = ? AND address = ?"
                    " AND scope IN ('all', ?) AND expires_at IS NULL@LOCK",
                    suppression.tenant,
                    suppression.address,
                    suppression.scope.value,
                )
                if kept is not None:
                    return None
            event_id = yield from insert_event(event)
            stored = suppression
            if suppression.event_id is None:
                stored = replace(suppression, event_id=event_id)
            yield from upsert_suppression(stored)
            yield from audited(audit, (stored, event_id))
            return stored, event_id

        return await self._transact(script())

    async def lift_suppressions(
        self,
        address: str,
        tenant: str | None,
        make_event: Callable[[Suppression], Event],
        *,
        audit: AuditOf | None = None,
        scope: Scope | None = None,
        probation: Callable[[str], timedelta | None] | None = None,
    ) -> list[tuple[Suppression, int]]:
        """Remove an address's suppressions (clear or hashed) and record one event each.

        The events are ``unsuppressed``: the auto-block policy reads one as a counter reset.

        Args:
            address: the canonical address.
            tenant: one tenant, or ``None`` for every tenant.
            make_event: builds the event for each lifted suppression.
            audit: builds the admin audit entry from the result, written in the same
                transaction.
            scope: lift only the suppression of that scope (``None``: every scope).
            probation: a tenant's probation length (``None``: none): each lift starts (or
                restarts) the probation of (tenant, address), from its event on
                (``store.stream_queries``), in the same transaction.

        Returns:
            Each lifted suppression with its event's id (empty when there was none), in
            (tenant, address, scope) order.
        """
        sql = f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE address IN (?, ?)"
        args: list[Any] = [address, hashed_address(address)]
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        if scope is not None:
            sql += " AND scope = ?"
            args.append(scope.value)
        sql += " ORDER BY tenant@C, address@C, scope@C@LOCK"

        def script() -> Script[list[tuple[Suppression, int]]]:
            lifted = []
            for found in map(rows.suppression_from, (yield fetch(sql, *args))):
                yield count(
                    "DELETE FROM suppressions WHERE tenant = ? AND address = ? AND scope = ?",
                    found.tenant,
                    found.address,
                    found.scope.value,
                )
                event = make_event(found)
                event_id = yield from insert_event(event)
                lifted.append((found, event_id))
                length = None if probation is None else probation(found.tenant)
                if length:
                    yield from start_probation(found.tenant, address, event.at, length, event_id)
            yield from audited(audit, lifted)
            return lifted

        return await self._transact(script())

    # --- history --------------------------------------------------------------------------

    async def event_by_id(self, event_id: int) -> Event | None:
        found = await self._query(
            one(f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE id = ?", event_id)
        )
        return None if found is None else rows.event_from(found)

    async def latest_recipient(self, address: str, tenant: str | None) -> RecipientView | None:
        """The most recently updated recipient row for an address."""
        sql = f"SELECT {rows.RECIPIENT_VIEW} WHERE r.address = ?"
        args: list[Any] = [address]
        if tenant is not None:
            sql += " AND r.tenant = ?"
            args.append(tenant)
        sql += " ORDER BY r.updated_at DESC, r.id DESC LIMIT 1"
        found = await self._query(one(sql, *args))
        return None if found is None else rows.recipient_view_from(found)

    async def latest_rejection(self, address: str, tenant: str | None) -> Event | None:
        """The most recent intake refusal (``rejected`` event) of an address."""
        return await self.latest_event(address, tenant, EventType.REJECTED)

    async def latest_event(self, address: str, tenant: str | None, kind: EventType) -> Event | None:
        """The most recent event of one type for an address (``possible_typo``, …)."""
        sql = f"SELECT {rows.EVENT_COLUMNS} FROM events WHERE address = ? AND type = ?"
        args: list[Any] = [address, kind.value]
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        found = await self._query(one(sql + " ORDER BY at DESC, id DESC LIMIT 1", *args))
        return None if found is None else rows.event_from(found)

    # --- messages -------------------------------------------------------------------------

    async def list_messages(
        self, where: MessageFilter, limit: int, after: tuple[float, str] | None
    ) -> list[MessageRow]:
        """Messages newest first, filtered; ``after`` is the (received_at, queue_id) key
        of the last row of the previous page (keyset pagination: stable under inserts)."""
        sql = f"SELECT {rows.MESSAGE_COLUMNS} FROM messages m WHERE 1 = 1"
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
        if where.message_id is not None:
            sql += " AND m.message_id = ?"
            args.append(where.message_id)
        inner = [
            (column, found)
            for column, found in (
                ("address", where.recipient),
                ("status", where.status),
                ("category", where.category),
            )
            if found is not None
        ]
        if inner:
            sql += " AND EXISTS (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id"
            sql += "".join(f" AND r.{column} = ?" for column, _ in inner) + ")"
            args.extend(found for _, found in inner)
        if after is not None:
            sql += " AND (m.received_at < ? OR (m.received_at = ? AND m.queue_id@C < ?))"
            args.extend([float(after[0]), float(after[0]), after[1]])
        sql += " ORDER BY m.received_at DESC, m.queue_id@C DESC LIMIT ?"
        args.append(limit)
        return [rows.message_from(r) for r in await self._query(every(sql, *args))]

    async def message(self, queue_id: str) -> MessageRow | None:
        found = await self._query(
            one(f"SELECT {rows.MESSAGE_COLUMNS} FROM messages m WHERE m.queue_id = ?", queue_id)
        )
        return None if found is None else rows.message_from(found)

    async def recipients_summary(
        self, queue_ids: Sequence[str]
    ) -> dict[str, list[tuple[str, str, str | None]]]:
        """queue id -> [(address, status, category)] for a page of messages."""
        d = self.dialect

        def script() -> Script[dict[str, list[tuple[str, str, str | None]]]]:
            summary: dict[str, list[tuple[str, str, str | None]]] = {}
            for chunk in d.chunks(list(queue_ids)):
                among, args = d.among("queue_id", chunk)
                for queue_id, address, status, category in (
                    yield fetch(
                        "SELECT queue_id, address, status, category FROM recipients"
                        f" WHERE {among} ORDER BY id",
                        *args,
                    )
                ):
                    summary.setdefault(queue_id, []).append((address, status, category))
            return summary

        return await self._query(script())

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

        def change() -> Script[int | None]:
            pending = yield from _pending_of(queue_id, _PENDING)
            if pending is None or (held and not pending):
                return None if pending is None else 0  # nothing left to hold: as it is
            yield count("UPDATE messages SET held = ? WHERE queue_id = ?", int(held), queue_id)
            for view in pending:
                event = make_event(view)
                at = event.at.timestamp()
                yield count(
                    "UPDATE recipients SET status = ?, updated_at = ?,"
                    " due_at = CASE WHEN ? THEN due_at ELSE @LEAST(due_at, ?) END WHERE id = ?",
                    "held" if held else ("deferred" if view.attempts else "queued"),
                    at,
                    held,
                    at,
                    view.recipient_id,
                )
                yield from insert_event(event)
            return len(pending)

        return await self._transact(_audited(change(), audit))

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

        def change() -> Script[int | None]:
            # Recipients held for a suppressed address (``held_until``) are cancelled too.
            pending = yield from _pending_of(
                queue_id, "(r.due_at IS NOT NULL OR r.held_until IS NOT NULL)"
            )
            if pending is None:
                return None
            for view in pending:
                event = make_event(view)
                yield count(
                    "UPDATE recipients SET status = ?, due_at = NULL, lease_owner = NULL,"
                    " held_until = NULL, updated_at = ?, last_reply = ? WHERE id = ?",
                    Status.EXPIRED.value,
                    event.at.timestamp(),
                    event.text,
                    view.recipient_id,
                )
                yield from insert_event(event)
            yield count("UPDATE messages SET content = NULL, held = 0 WHERE queue_id = ?", queue_id)
            return len(pending)

        return await self._transact(_audited(change(), audit))

    # --- statistics -----------------------------------------------------------------------

    async def oldest_waiting_recipient(self) -> datetime | None:
        """When the message of the oldest recipient still waiting (queued or deferred) was
        accepted; ``None`` when nothing waits (the ``gateway_queue_oldest_age_seconds`` gauge).

        Held recipients are left out: an operator parked them on purpose.
        """
        return rows.dt(await self._query(single(rows.OLDEST_WAITING)))

    async def event_counts(self, since: datetime) -> list[tuple[str, str, str | None, str, int]]:
        """(tenant, type, category, remote host, count) of the events since ``since``."""
        found = await self._query(
            every(
                "SELECT tenant, type, category, remote_host, count(*) FROM events WHERE at >= ?"
                " GROUP BY tenant, type, category, remote_host",
                since.timestamp(),
            )
        )
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in found]

    async def recipient_counts(self, since: datetime) -> list[tuple[str, str, str | None, int]]:
        """(tenant, status, category, count) of recipient rows updated since ``since``."""
        found = await self._query(
            every(
                "SELECT tenant, status, category, count(*) FROM recipients WHERE updated_at >= ?"
                " GROUP BY tenant, status, category",
                since.timestamp(),
            )
        )
        return [(r[0], r[1], r[2], int(r[3])) for r in found]

    # --- audit ----------------------------------------------------------------------------

    async def audit(self, entry: AuditEntry) -> int:
        return await self._transact(insert_audit(entry))

    async def list_audit(self, limit: int, before_id: int | None) -> list[AuditEntry]:
        sql = "SELECT id, at, actor, action, target, detail FROM admin_audit"
        args: list[Any] = []
        if before_id is not None:
            sql += " WHERE id < ?"
            args.append(before_id)
        found = await self._query(every(sql + " ORDER BY id DESC LIMIT ?", *args, limit))
        return [AuditEntry(rows.utc(r[1]), r[2], r[3], r[4], json.loads(r[5]), r[0]) for r in found]

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
        key, at, d = hashed_address(address), now.timestamp(), self.dialect

        def script() -> Script[Erasure]:
            found = yield fetch(
                "SELECT DISTINCT queue_id FROM recipients WHERE address = ?", address
            )
            queue_ids = [r[0] for r in found]
            events = yield count("DELETE FROM events WHERE address = ?", address)
            # Feedback-loop reports that could not be attributed, naming it (issue 16 item 6).
            yield count(feedback_queries.ERASE, *feedback_queries.erase_args(address))
            cancelled = yield count(
                "UPDATE recipients SET status = 'expired', due_at = NULL, lease_owner = NULL,"
                " held_until = NULL, updated_at = ? WHERE address = ?"
                " AND (due_at IS NOT NULL OR held_until IS NOT NULL)",
                at,
                address,
            )
            hashed = yield count(
                "UPDATE recipients SET address = ?, last_reply = '' WHERE address = ?",
                key,
                address,
            )
            yield count(
                "DELETE FROM suppressions WHERE address = ? AND expires_at IS NOT NULL"
                " AND expires_at <= ?",
                address,
                at,
            )
            suppressions = yield count(
                "INSERT INTO suppressions (tenant, address, reason, since, expires_at, event_id,"
                " note, scope) SELECT tenant, ?, reason, since, expires_at, NULL, '', scope"
                " FROM suppressions WHERE address = ? ON CONFLICT (tenant, address, scope)"
                " DO UPDATE SET"
                " reason = excluded.reason, since = excluded.since,"
                " expires_at = excluded.expires_at",
                key,
                address,
            )
            yield count("DELETE FROM suppressions WHERE address = ?", address)
            yield from forget_holds(address)  # its quota holds name it in clear
            contents = 0
            for chunk in d.chunks(queue_ids):
                among, args = d.among("queue_id", chunk)
                contents += yield count(
                    f"UPDATE messages SET content = NULL WHERE {among}"
                    " AND content IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recipients r"
                    " WHERE r.queue_id = messages.queue_id AND r.due_at IS NOT NULL)",
                    *args,
                )
            erased = Erasure(events, hashed, cancelled, suppressions, contents)
            yield from audited(audit, erased)
            return erased

        return await self._transact(script())

    async def purge_content(self, before: datetime, limit: int) -> int:
        """Delete the content of up to ``limit`` messages final since before ``before``.

        A message is final when none of its recipients waits for an attempt; its last
        recipient update is the time of its final status.
        """
        cutoff = before.timestamp()
        return await self._transact(
            changed(
                "UPDATE messages SET content = NULL WHERE queue_id IN (SELECT m.queue_id FROM"
                " messages m WHERE m.content IS NOT NULL AND m.received_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND"
                " (r.due_at IS NOT NULL OR r.held_until IS NOT NULL OR r.updated_at >= ?))"
                " LIMIT ?@SKIP)",
                cutoff,
                cutoff,
                limit,
            )
        )

    async def purge_events(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events older than ``before``."""
        return await self._transact(
            changed(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? LIMIT ?@SKIP)",
                before.timestamp(),
                limit,
            )
        )


def _audited(change: Script[int | None], audit: AuditOf | None) -> Script[int | None]:
    """``change``, then the audit entry ``audit`` builds from its result."""
    result = yield from change
    yield from audited(audit, result)
    return result


def _pending_of(queue_id: str, which: str) -> Script[list[RecipientView] | None]:
    """The message's recipients ``which`` selects, locked (``None``: no such message). The
    message row's lock serialises holds, releases and cancels of one message."""
    if (yield row("SELECT 1 FROM messages WHERE queue_id = ?@LOCK", queue_id)) is None:
        return None
    found = yield fetch(
        f"SELECT {rows.RECIPIENT_VIEW} WHERE r.queue_id = ? AND {which} ORDER BY r.id@LOCK_R",
        queue_id,
    )
    return [rows.recipient_view_from(r) for r in found]
