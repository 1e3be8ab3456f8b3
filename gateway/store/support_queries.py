"""The support answers' and the overview's queries, written once for both stores.

Owns: a tenant's sending activity (last message accepted, messages and refusals per day:
issue 16 item 1), the overview's aggregates (events per tenant, day, type and category; the
destination domains and MX hosts that fail most; what is waiting or held now: item 4) and a
tenant's own texts for the customer messages (item 3). Every query takes an explicit
``tenant`` filter (``None``: every tenant), so a caller restricted to one tenant asks only
for its rows. Does not own: what the numbers mean or how they are drawn (``admin``).

Each aggregate reads a bounded range of one index (migration 011: ``messages (tenant,
received_at)``, ``events (type, at)``; ``events (at)``, ``recipients (status)`` from before)
and groups in the database: the answer's size is bounded by tenants x days x types, never
by the number of messages. Day buckets are a ``CASE`` over the day boundaries the caller
gives (UTC midnights, newest first), the same text in both dialects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.core.activity import DayCount, OverviewCounts, TenantActivity
from gateway.core.records import AuditOf
from gateway.store import rows
from gateway.store.mixins import Queries
from gateway.store.sql import Script, count, every, many, single
from gateway.store.writes import audited

#: The events that are a failure at a destination (the overview's "failing" lists).
FAILURES = ("bounced", "deferred", "expired")
#: How many failing domains and MX hosts the overview is given.
TOP = 10
#: How many MX hosts are read to fold into providers (the busiest first).
HOSTS_READ = 200


def _day_case(column: str, starts: Sequence[datetime]) -> tuple[str, list[float]]:
    """``CASE WHEN column >= ? THEN 0 … END``: the index in ``starts`` (newest first) of the
    day a time falls in, and its arguments."""
    whens = " ".join(f"WHEN {column} >= ? THEN {i}" for i in range(len(starts)))
    return f"CASE {whens} END", [s.timestamp() for s in starts]


def _tenant(sql: str, args: list[Any], tenant: str | None, column: str = "tenant") -> str:
    if tenant is None:
        return sql
    args.append(tenant)
    return f"{sql} AND {column} = ?"


class SupportQueries(Queries):
    """Activity, overview and tenant-text queries; relies on the store's ``_query`` and
    ``_transact``."""

    async def tenant_activity(
        self, tenant: str | None, starts: Sequence[datetime]
    ) -> TenantActivity:
        """What the application (one tenant, or all) handed over in the days ``starts``.

        Args:
            tenant: one tenant, or ``None`` for every tenant.
            starts: the days' UTC midnights, newest first (``core.activity.day_starts``).
        """
        case_m, case_args_m = _day_case("received_at", starts)
        case_e, case_args_e = _day_case("at", starts)
        oldest = starts[-1].timestamp()

        def script() -> Script[TenantActivity]:
            args: list[Any] = []
            last = yield from single(
                _tenant("SELECT max(received_at) FROM messages WHERE 1 = 1", args, tenant), *args
            )
            args = [*case_args_m, oldest]
            accepted = yield from every(
                _tenant(f"SELECT {case_m}, count(*) FROM messages WHERE received_at >= ?", args,
                        tenant) + " GROUP BY 1",
                *args,
            )  # fmt: skip
            args = [*case_args_e, oldest]
            refused = yield from every(
                _tenant(
                    f"SELECT {case_e}, count(*) FROM events WHERE type = 'rejected' AND at >= ?",
                    args,
                    tenant,
                )
                + " GROUP BY 1",
                *args,
            )
            a = {int(r[0]): int(r[1]) for r in accepted if r[0] is not None}
            f = {int(r[0]): int(r[1]) for r in refused if r[0] is not None}
            days = [DayCount(s, a.get(i, 0), f.get(i, 0)) for i, s in enumerate(starts)]
            return TenantActivity(rows.dt(last), days)

        return await self._query(script())

    async def overview(self, tenant: str | None, starts: Sequence[datetime]) -> OverviewCounts:
        """The overview's aggregates over the days ``starts`` (newest first).

        Args:
            tenant: one tenant, or ``None`` for every tenant.
            starts: the days' UTC midnights, newest first.
        """
        case, case_args = _day_case("at", starts)
        oldest = starts[-1].timestamp()
        failing = "type IN ('bounced', 'deferred', 'expired') AND at >= ?"

        def script() -> Script[OverviewCounts]:
            # Two passes: every event by type (the (tenant, type, at) index covers it), then
            # the failures by category (a small share of the rows; the category is not in
            # the index): three times faster than one pass with the category.
            args: list[Any] = [*case_args, oldest]
            events = yield from every(
                _tenant(f"SELECT tenant, {case}, type, count(*) FROM events WHERE at >= ?", args,
                        tenant) + " GROUP BY 1, 2, 3",
                *args,
            )  # fmt: skip
            args = [*case_args, oldest]
            failures = yield from every(
                _tenant(
                    f"SELECT tenant, {case}, type, category, count(*) FROM events"
                    " WHERE type IN ('bounced', 'deferred', 'expired', 'rejected') AND at >= ?"
                    " AND category IS NOT NULL",
                    args,
                    tenant,
                )
                + " GROUP BY 1, 2, 3, 4",
                *args,
            )
            args = [oldest]
            domain = "@DOMAIN_OF_ADDRESS"
            domains = yield from every(
                _tenant(f"SELECT {domain}, count(*) FROM events WHERE {failing}", args, tenant)
                + f" GROUP BY 1 ORDER BY count(*) DESC, {domain}@C LIMIT {TOP}",
                *args,
            )
            args = [oldest]
            hosts = yield from every(
                _tenant(f"SELECT remote_host, count(*) FROM events WHERE {failing}", args, tenant)
                + f" AND remote_host <> '' GROUP BY 1 ORDER BY count(*) DESC, remote_host@C"
                f" LIMIT {HOSTS_READ}",
                *args,
            )
            args = []
            waiting = yield from every(
                _tenant(
                    "SELECT tenant, status, count(*), min(updated_at) FROM recipients"
                    " WHERE status IN ('queued', 'deferred', 'held')",
                    args,
                    tenant,
                )
                + " GROUP BY 1, 2 ORDER BY tenant@C, status@C",
                *args,
            )
            return OverviewCounts(
                events=[(r[0], int(r[1]), r[2], int(r[3])) for r in events if r[1] is not None],
                failures=[
                    (r[0], int(r[1]), r[2], r[3], int(r[4])) for r in failures if r[1] is not None
                ],
                failing_domains=[(r[0], int(r[1])) for r in domains],
                failing_hosts=[(r[0], int(r[1])) for r in hosts],
                waiting=[(r[0], r[1], int(r[2]), rows.utc(r[3])) for r in waiting],
            )

        return await self._query(script())

    # --- a tenant's own texts -----------------------------------------------------------

    async def tenant_texts(self, tenant: str) -> dict[str, dict[str, str]]:
        """A tenant's texts: language -> key -> value (empty when it has none)."""
        found = await self._query(
            every(
                "SELECT lang, key, value FROM tenant_texts WHERE tenant = ? ORDER BY lang@C, key@C",
                tenant,
            )
        )
        texts: dict[str, dict[str, str]] = {}
        for lang, key, value in found:
            texts.setdefault(lang, {})[key] = value
        return texts

    async def set_tenant_texts(
        self,
        tenant: str,
        lang: str,
        values: Mapping[str, str],
        at: datetime,
        *,
        audit: AuditOf | None = None,
    ) -> int:
        """Replace a tenant's texts of one language with ``values`` (empty: back to the
        shipped texts), with the admin audit entry in the same transaction.

        Returns:
            How many keys were stored.
        """

        def script() -> Script[int]:
            yield count("DELETE FROM tenant_texts WHERE tenant = ? AND lang = ?", tenant, lang)
            if values:
                yield many(
                    "INSERT INTO tenant_texts (tenant, lang, key, value, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(tenant, lang, k, v, at.timestamp()) for k, v in values.items()],
                )
            yield from audited(audit, len(values))
            return len(values)

        return await self._transact(script())
