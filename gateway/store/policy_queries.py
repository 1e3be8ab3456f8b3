"""Hold instead of refuse and the tenant pause (issue 15), written once for both stores.

Owns: the ``tenant_policies`` rows (a tenant's policy settings and its pause, migration 010),
recipients held because their address was suppressed (``status = 'held'`` with
``held_until`` set and ``due_at`` NULL: the relay never claims them), their release once the
address is no longer suppressed and their expiry past the hold window, and the counts the
automatic pause judges. Does not own: when any of this happens (``services.holds``), nor an
administrator's hold of a whole message (``messages.held``, ``store.admin_queries``): those
rows keep ``held_until`` NULL, so neither touches the other's.

Exactly once: a release moves a held row to ``queued`` (``deferred`` when it was attempted
before) and due now, in one transaction that takes the row only while it is still ``held``
(PostgreSQL locks it, ``@LOCK_R``; SQLite's single writer serialises); two nodes releasing
the same address at once release each row once, and the relay's lease then delivers it once
like any queued recipient. Rows are released in ``id`` order (the order they were queued).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from gateway.core.model import Event, EventType, Status
from gateway.core.records import AuditOf, RecipientView, TenantSettings
from gateway.core.tenant_policy import (
    PauseCause,
    SuppressedAction,
    TenantPolicy,
    WindowCounts,
)
from gateway.store import rows
from gateway.store.mixins import Queries
from gateway.store.sql import Script, count, every, one, row
from gateway.store.sql import rows as fetch
from gateway.store.writes import audited, insert_event

POLICY_COLUMNS = (
    "tenant, suppressed_action, hold_window_seconds, pause_bounce_rate, pause_complaint_rate,"
    " pause_min_messages, pause_window_seconds, pause_delivery, paused, paused_at, pause_cause,"
    " pause_note, resumed_at"
)
#: Policy settings a PATCH may change -> column (``update_tenant_policy``).
POLICY_SETTINGS = {
    "suppressed_action": "suppressed_action",
    "hold_window": "hold_window_seconds",
    "pause_bounce_rate": "pause_bounce_rate",
    "pause_complaint_rate": "pause_complaint_rate",
    "pause_min_messages": "pause_min_messages",
    "pause_window": "pause_window_seconds",
    "pause_delivery": "pause_delivery",
}
#: The relay's claims take only recipients of tenants whose delivery is not paused (a
#: paused tenant's queue waits: no attempt counted, nothing recorded).
DELIVERING = (
    "NOT EXISTS (SELECT 1 FROM tenant_policies p WHERE p.tenant = r.tenant"
    " AND p.delivery_paused = 1)"
)
#: Rows another node is releasing or expiring are skipped, not waited for (PostgreSQL).
_SKIP_R = {True: " FOR UPDATE OF r SKIP LOCKED", False: ""}
_HELD = "r.status = 'held' AND r.held_until IS NOT NULL"
_ACTIVE_S = "(s.expires_at IS NULL OR s.expires_at > ?)"
#: Not suppressed any more: no active suppression of the row's address in its tenant.
_UNSUPPRESSED = (
    "NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant = r.tenant"
    f" AND s.address = r.address AND {_ACTIVE_S})"
)


def policy_from(found: Sequence[Any]) -> TenantPolicy:
    """A ``TenantPolicy`` from a row of ``POLICY_COLUMNS``."""

    def seconds(value: float | None) -> timedelta | None:
        return None if value is None else timedelta(seconds=value)

    return TenantPolicy(
        suppressed_action=None if found[1] is None else SuppressedAction(found[1]),
        hold_window=seconds(found[2]),
        pause_bounce_rate=found[3],
        pause_complaint_rate=found[4],
        pause_min_messages=found[5],
        pause_window=seconds(found[6]),
        pause_delivery=None if found[7] is None else bool(found[7]),
        paused=bool(found[8]),
        paused_at=rows.dt(found[9]),
        pause_cause=None if found[10] is None else PauseCause(found[10]),
        pause_note=found[11],
        resumed_at=rows.dt(found[12]),
    )


def policies() -> Script[dict[str, TenantPolicy]]:
    """Every tenant's policy row, by tenant (a tenant without one has the defaults)."""
    found = yield fetch(f"SELECT {POLICY_COLUMNS} FROM tenant_policies")
    return {r[0]: policy_from(r) for r in found}


def policies_of(name: str) -> Script[dict[str, TenantPolicy]]:
    """``policies`` of one tenant."""
    found = yield fetch(f"SELECT {POLICY_COLUMNS} FROM tenant_policies WHERE tenant = ?", name)
    return {r[0]: policy_from(r) for r in found}


def with_policy(settings: TenantSettings, own: dict[str, TenantPolicy]) -> TenantSettings:
    """``settings`` with its tenant's policy row from ``own`` (unchanged without one)."""
    found = own.get(settings.tenant.name)
    if found is None:
        return settings
    return replace(settings, tenant=replace(settings.tenant, policy=found))


def _ensure_row(name: str) -> Script[bool]:
    """The tenant's policy row exists (inserted with the defaults); ``False``: no tenant."""
    if (yield row("SELECT 1 FROM tenants WHERE name = ?@LOCK", name)) is None:
        return False
    yield count(
        "INSERT INTO tenant_policies (tenant) VALUES (?) ON CONFLICT (tenant) DO NOTHING", name
    )
    return True


class PolicyQueries(Queries):
    """Holds and pauses; relies on the store's ``_query`` and ``_transact``."""

    # --- settings and pause -----------------------------------------------------------------

    async def tenant_policy(self, name: str) -> TenantPolicy | None:
        """The tenant's policy row, or ``None`` when it has none (the defaults)."""
        found = await self._query(
            one(f"SELECT {POLICY_COLUMNS} FROM tenant_policies WHERE tenant = ?", name)
        )
        return None if found is None else policy_from(found)

    async def update_tenant_policy(
        self,
        name: str,
        changes: dict[str, Any],
        *,
        delivery: bool | None = None,
        audit: AuditOf | None = None,
    ) -> bool:
        """Apply ``changes`` (keys of ``POLICY_SETTINGS``; ``None`` restores the default);
        ``False`` if no tenant. ``audit`` builds the admin audit entry from the result, in the
        same transaction.

        ``delivery``: the tenant's ``pause_delivery`` with the default applied, when the
        change names it: a pause in force follows it at once (``delivery_paused``).
        """
        # A KeyError here is a programming error: the keys are the API's settings.
        assignments = [f"{POLICY_SETTINGS[key]} = ?" for key in changes]
        args = [rows.column_value(v) for v in changes.values()]
        if delivery is not None:
            assignments.append("delivery_paused = paused * ?")
            args.append(int(delivery))

        def script() -> Script[bool]:
            found = yield from _ensure_row(name)
            if found and assignments:
                yield count(
                    f"UPDATE tenant_policies SET {', '.join(assignments)} WHERE tenant = ?",
                    *args,
                    name,
                )
            yield from audited(audit, found)
            return found

        return await self._transact(script())

    async def set_tenant_paused(
        self,
        event: Event,
        *,
        paused: bool,
        delivery: bool,
        cause: PauseCause | None,
        audit: AuditOf | None = None,
    ) -> bool | None:
        """Pause or resume ``event.tenant``, recording ``event`` (``tenant_paused`` or
        ``tenant_resumed``) in the same transaction.

        Args:
            event: the event; its ``at`` is the pause's time, its ``text`` the note.
            paused: pause (``True``) or resume.
            delivery: while paused, the relay skips the tenant's recipients too.
            cause: why (``None`` on resume).
            audit: builds the admin audit entry from the result, in the same transaction.

        Returns:
            ``True`` when the state changed, ``False`` when it already was so (nothing is
            written: two nodes pausing at once record one pause), ``None`` if no tenant.
        """

        def script() -> Script[bool | None]:
            if not (yield from _ensure_row(event.tenant)):
                yield from audited(audit, None)
                return None
            changed: bool = (
                yield count(
                    "UPDATE tenant_policies SET paused = ?, delivery_paused = ?, paused_at = ?,"
                    " pause_cause = ?, pause_note = ?, resumed_at = ?"
                    " WHERE tenant = ? AND paused <> ?",
                    int(paused),
                    int(paused and delivery),
                    event.at.timestamp() if paused else None,
                    None if cause is None else cause.value,
                    event.text if paused else "",
                    None if paused else event.at.timestamp(),
                    event.tenant,
                    int(paused),
                )
            ) == 1
            if changed:
                yield from insert_event(event)
                if not paused and self.dialect.notify:
                    yield row(self.dialect.notify)  # its queue is due again: wake the relays
            yield from audited(audit, changed)
            return changed

        return await self._transact(script())

    async def pause_states(self) -> list[tuple[str, bool]]:
        """(tenant, paused) of every tenant with a policy row, by name (the gauge)."""
        found = await self._query(
            every("SELECT tenant, paused FROM tenant_policies ORDER BY tenant@C")
        )
        return [(r[0], bool(r[1])) for r in found]

    async def delivery_paused(self) -> frozenset[str]:
        """The tenants whose delivery is paused now (the relay's gate for the mail it already
        holds in memory; its claims skip them through ``DELIVERING``)."""
        found = await self._query(
            every("SELECT tenant FROM tenant_policies WHERE delivery_paused = 1")
        )
        return frozenset(r[0] for r in found)

    async def outcome_counts(self, tenant: str, since: datetime) -> WindowCounts:
        """The tenant's recipients ``sent`` and ``bounced`` and its complaints since
        ``since``, from the events log (index ``events_tenant_type_at``)."""
        found = await self._query(
            every(
                "SELECT type, category, count(*) FROM events WHERE tenant = ? AND at >= ?"
                " AND type IN ('sent', 'bounced', 'report') GROUP BY type, category",
                tenant,
                since.timestamp(),
            )
        )
        sent = bounced = complaints = 0
        for kind, category, n in found:
            if kind == EventType.SENT.value:
                sent += int(n)
            elif kind == EventType.BOUNCED.value:
                bounced += int(n)
            elif category == "complaint":
                complaints += int(n)
        return WindowCounts(sent, bounced, complaints)

    # --- held recipients --------------------------------------------------------------------

    async def hold_recipients(
        self,
        queue_id: str,
        until: dict[str, datetime],
        make_event: Callable[[RecipientView], Event],
    ) -> list[RecipientView]:
        """Hold the message's queued recipients named in ``until`` (address -> end of its
        hold window): ``held``, not due, each with the event ``make_event`` builds.

        Only a row still ``queued`` and not leased is taken: one the relay claimed in the
        meantime is left to its attempt (the relay's own check finds it suppressed).
        """
        if not until:
            return []
        d = self.dialect

        def script() -> Script[list[RecipientView]]:
            among, args = d.among("r.address", sorted(until))
            found = yield fetch(
                f"SELECT {rows.RECIPIENT_VIEW} WHERE r.queue_id = ? AND {among}"
                " AND r.status = 'queued' AND r.lease_owner IS NULL ORDER BY r.id@LOCK_R",
                queue_id,
                *args,
            )
            views = list(map(rows.recipient_view_from, found))
            return (yield from _hold(views, [until[v.address] for v in views], make_event))

        return await self._transact(script())

    async def hold_leased(
        self,
        owner: str,
        until: dict[int, datetime],
        make_event: Callable[[RecipientView], Event],
    ) -> list[RecipientView]:
        """Hold recipients the relay ``owner`` claimed (recipient id -> end of its window)
        instead of suppressing them: its check before sending found the address suppressed
        for a tenant that holds. Only rows still leased to ``owner`` and pending are taken."""
        if not until:
            return []
        d = self.dialect

        def script() -> Script[list[RecipientView]]:
            among, args = d.among("r.id", sorted(until), "bigint")
            found = yield fetch(
                f"SELECT {rows.RECIPIENT_VIEW} WHERE {among} AND r.lease_owner = ?"
                " AND r.status IN ('queued', 'deferred') ORDER BY r.id@LOCK_R",
                *args,
                owner,
            )
            views = list(map(rows.recipient_view_from, found))
            return (yield from _hold(views, [until[v.recipient_id] for v in views], make_event))

        return await self._transact(script())

    async def held_until(self, recipient_ids: Sequence[int]) -> dict[int, datetime]:
        """recipient id -> end of its hold window, for those of ``recipient_ids`` held
        because their address was suppressed (the API's and the page's ``held_until``)."""
        d = self.dialect

        def script() -> Script[dict[int, datetime]]:
            found: dict[int, datetime] = {}
            for chunk in d.chunks(list(recipient_ids)):
                among, args = d.among("r.id", chunk, "bigint")
                for rid, until in (
                    yield fetch(
                        f"SELECT r.id, r.held_until FROM recipients r WHERE {_HELD} AND {among}",
                        *args,
                    )
                ):
                    found[int(rid)] = rows.utc(until)
            return found

        return await self._query(script())

    async def release_held(
        self,
        now: datetime,
        limit: int,
        make_event: Callable[[RecipientView], Event],
        *,
        tenant: str | None = None,
        address: str | None = None,
    ) -> list[RecipientView]:
        """Release up to ``limit`` held recipients whose address is no longer suppressed and
        whose window has not passed, in the order they were queued: ``queued`` (``deferred``
        when attempted before), due at ``now``, each with the event ``make_event`` builds.

        Args:
            now: the time; the window of a released row ends after it.
            limit: the most rows released in this transaction.
            make_event: the ``released`` event of each row.
            tenant: only this tenant's rows (``None``: every tenant).
            address: only this address's rows (an unblock); ``None``: any (the sweep).
        """
        at = now.timestamp()
        sql = f"SELECT {rows.RECIPIENT_VIEW} WHERE {_HELD} AND r.held_until > ? AND {_UNSUPPRESSED}"
        args: list[Any] = [at, at]
        if tenant is not None:
            sql += " AND r.tenant = ?"
            args.append(tenant)
        if address is not None:
            sql += " AND r.address = ?"
            args.append(address)
        sql += " ORDER BY r.id LIMIT ?" + _SKIP_R[self.dialect.numbered]
        args.append(limit)

        def script() -> Script[list[RecipientView]]:
            released = []
            for view in map(rows.recipient_view_from, (yield fetch(sql, *args))):
                event = make_event(view)
                yield count(
                    "UPDATE recipients SET status = ?, due_at = ?, held_until = NULL,"
                    " updated_at = ? WHERE id = ? AND status = 'held'",
                    (Status.DEFERRED if view.attempts else Status.QUEUED).value,
                    at,
                    event.at.timestamp(),
                    view.recipient_id,
                )
                yield from insert_event(event)
                released.append(view)
            if released and self.dialect.notify:
                yield row(self.dialect.notify)
            return released

        return await self._transact(script())

    async def expire_held(
        self, now: datetime, limit: int, make_event: Callable[[RecipientView], Event]
    ) -> list[RecipientView]:
        """End up to ``limit`` held recipients whose window passed by ``now``: ``expired``,
        each with the event ``make_event`` builds, oldest window first."""
        at = now.timestamp()
        sql = (
            f"SELECT {rows.RECIPIENT_VIEW} WHERE {_HELD} AND r.held_until <= ?"
            " ORDER BY r.held_until, r.id LIMIT ?"
        )
        sql += _SKIP_R[self.dialect.numbered]

        def script() -> Script[list[RecipientView]]:
            expired = []
            for view in map(rows.recipient_view_from, (yield fetch(sql, at, limit))):
                event = make_event(view)
                yield count(
                    "UPDATE recipients SET status = 'expired', due_at = NULL, held_until = NULL,"
                    " updated_at = ?, last_reply = ? WHERE id = ? AND status = 'held'",
                    event.at.timestamp(),
                    event.text,
                    view.recipient_id,
                )
                yield from insert_event(event)
                expired.append(view)
            return expired

        return await self._transact(script())


def _hold(
    views: list[RecipientView],
    until: list[datetime],
    make_event: Callable[[RecipientView], Event],
) -> Script[list[RecipientView]]:
    """Hold each of ``views`` (found and locked by the caller) until its ``until``: ``held``,
    not due, its lease (if any) given back, with the event ``make_event`` builds."""
    for view, end in zip(views, until, strict=True):
        event = make_event(view)
        yield count(
            "UPDATE recipients SET status = 'held', due_at = NULL, lease_owner = NULL,"
            " held_until = ?, updated_at = ? WHERE id = ?",
            end.timestamp(),
            event.at.timestamp(),
            view.recipient_id,
        )
        yield from insert_event(event)
    return views
