"""Streams and probation (issue 15 items 1 and 3), written once for both stores.

Owns: a probation's row (started by an unblock in the unblock's own transaction,
``start_probation``; read back with its last success, ``probations``), the tenants' and
logins' stream settings (``with_streams``, read with the tenant directory's settings), a
login's default stream (``set_login_stream``) and a message's stream (``message_stream``).
Does not own: what a probation or a stream means (``core.streams``) nor the suppressions
themselves (``store.queries``, ``store.admin_queries``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from gateway.core.records import AuditOf, TenantSettings
from gateway.core.streams import ComplaintScope, Probation, Stream, StreamSettings
from gateway.store import rows
from gateway.store.mixins import Queries
from gateway.store.sql import Script, count, every, single
from gateway.store.sql import rows as fetch
from gateway.store.writes import audited

# A probation is over once the address is suppressed again for every stream after it began.
_PROBATION = (
    "SELECT p.tenant, p.address, p.since, p.until, p.unblock_event_id,"
    " (SELECT max(e.at) FROM events e WHERE e.address = p.address AND e.tenant = p.tenant"
    " AND e.type = 'sent' AND e.at >= p.since)"
    " FROM probations p WHERE p.address = ? AND p.until > ?"
    " AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant = p.tenant"
    " AND s.address = p.address AND s.scope = 'all' AND s.since >= p.since)"
)


def start_probation(
    tenant: str, address: str, since: datetime, length: timedelta, event_id: int | None
) -> Script[None]:
    """Start (or restart) the probation of (tenant, address) from ``since`` for ``length``,
    naming the unblock's event; inside the unblock's transaction."""
    yield count(
        "INSERT INTO probations (tenant, address, since, until, unblock_event_id)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, address) DO UPDATE SET"
        " since = excluded.since, until = excluded.until,"
        " unblock_event_id = excluded.unblock_event_id",
        tenant,
        address,
        since.timestamp(),
        (since + length).timestamp(),
        event_id,
    )


def with_streams(found: Sequence[TenantSettings]) -> Script[list[TenantSettings]]:
    """``found`` with each tenant's stream settings and its logins' default streams."""
    if not found:
        return []
    logins: dict[str, list[tuple[str, Stream]]] = {}
    for tenant, username, stream in (
        yield fetch(
            "SELECT tenant, username, default_stream FROM credentials"
            " WHERE default_stream IS NOT NULL ORDER BY username@C"
        )
    ):
        logins.setdefault(tenant, []).append((username, Stream(stream)))
    columns: dict[str, Any] = {
        r[0]: r
        for r in (
            yield fetch(
                "SELECT name, probation_seconds, default_stream, complaint_scope FROM tenants"
            )
        )
    }
    result = []
    for settings in found:
        name = settings.tenant.name
        r = columns.get(name)
        streams = StreamSettings(
            probation=None if r is None or r[1] is None else timedelta(seconds=r[1]),
            default_stream=None if r is None or r[2] is None else Stream(r[2]),
            complaint_scope=None if r is None or r[3] is None else ComplaintScope(r[3]),
            logins=tuple(logins.get(name, ())),
        )
        tenant = replace(settings.tenant, streams=streams)
        result.append(replace(settings, tenant=tenant, streams=streams))
    return result


class StreamQueries(Queries):
    """Probations, login streams and message streams (``core.ports.StreamStore``)."""

    async def probations(self, address: str, tenant: str | None, now: datetime) -> list[Probation]:
        """The probations of ``address`` still running at ``now`` (not over, not ended by
        a new suppression for every stream), in one or every tenant, by tenant."""
        sql = _PROBATION
        args: list[Any] = [address, now.timestamp()]
        if tenant is not None:
            sql += " AND p.tenant = ?"
            args.append(tenant)
        found = await self._query(every(sql + " ORDER BY p.tenant@C", *args))
        return [
            Probation(
                tenant=r[0],
                address=r[1],
                since=rows.utc(r[2]),
                until=rows.utc(r[3]),
                unblock_event_id=r[4],
                success_at=rows.dt(r[5]),
            )
            for r in found
        ]

    async def set_login_stream(
        self, tenant: str, username: str, stream: Stream | None, *, audit: AuditOf | None = None
    ) -> bool:
        """Set (``None``: clear) the default stream of ``tenant``'s login ``username``;
        ``False`` when the tenant has no such login. Audited in the same transaction."""

        def script() -> Script[bool]:
            changed: bool = (
                yield count(
                    "UPDATE credentials SET default_stream = ? WHERE tenant = ? AND username = ?",
                    None if stream is None else stream.value,
                    tenant,
                    username,
                )
            ) == 1
            yield from audited(audit, changed)
            return changed

        return await self._transact(script())

    async def message_stream(self, queue_id: str) -> Stream | None:
        """The stream of message ``queue_id`` (``None``: no such message)."""
        found = await self._query(
            single("SELECT coalesce(max(stream), '') FROM messages WHERE queue_id = ?", queue_id)
        )
        return Stream(found) if found else None
