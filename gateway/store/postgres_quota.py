"""PostgreSQL queries for quota holds (mixed into ``PostgresStore``).

The PostgreSQL dialect of ``store.sqlite_quota``, method by method. Holding a recipient is
one call of ``gateway_reserve_quota`` (migration 006), which takes an advisory lock per
tenant, so nodes holding for the same tenant at once take turns; the enqueue settles the
holds in its own statement (``store.postgres._ENQUEUE``). Does not own: the pool or the
translation of errors (``store.postgres``), nor the limits (``checks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gateway.store.mixins import PostgresQueries
from gateway.store.rows import KEEP

if TYPE_CHECKING:
    import asyncpg

# The holder's holds, given back: each minute's usage loses what was held in it.
_RELEASE = (
    "WITH gone AS (DELETE FROM quota_holds WHERE holder = $1 RETURNING tenant, minute),"
    " back AS (UPDATE quota_usage u SET used = greatest(u.used - g.n, 0)"
    " FROM (SELECT tenant, minute, count(*) AS n FROM gone GROUP BY tenant, minute) g"
    " WHERE u.tenant = g.tenant AND u.minute = g.minute)"
    " SELECT count(*) FROM gone"
)


# An erased address's holds, given back (``store.sqlite_quota.forget_holds``).
FORGET = (
    "WITH gone AS (DELETE FROM quota_holds WHERE address = $1 RETURNING tenant, minute)"
    " UPDATE quota_usage u SET used = greatest(u.used - g.n, 0)"
    " FROM (SELECT tenant, minute, count(*) AS n FROM gone GROUP BY tenant, minute) g"
    " WHERE u.tenant = g.tenant AND u.minute = g.minute"
)

# Lapsed holds given back and deleted, then usage older than every window deleted
# ($1 now, $2 the oldest minute kept); the rows that went.
_PURGE = (
    "WITH gone AS (DELETE FROM quota_holds WHERE expires_at <= $1 RETURNING tenant, minute),"
    " back AS (UPDATE quota_usage u SET used = greatest(u.used - g.n, 0)"
    " FROM (SELECT tenant, minute, count(*) AS n FROM gone GROUP BY tenant, minute) g"
    " WHERE u.tenant = g.tenant AND u.minute = g.minute),"
    " old AS (DELETE FROM quota_usage WHERE minute < $2 RETURNING 1)"
    " SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM old)"
)


class PostgresQuotaQueries(PostgresQueries):
    """Quota holds; relies on ``PostgresStore._run``."""

    async def reserve_quota(
        self,
        tenant: str,
        holder: str,
        address: str,
        limits: Sequence[tuple[int, timedelta]],
        now: datetime,
        expires_at: datetime,
    ) -> int | None:
        """See ``SqliteStore.reserve_quota``: ``None`` when held, else the index of the
        first limit the recipient would exceed."""

        async def work(c: asyncpg.Connection) -> int | None:
            value = await c.fetchval(
                "SELECT gateway_reserve_quota($1, $2, $3, $4, $5, $6, $7, $8)",
                tenant,
                holder,
                address,
                now.timestamp(),
                expires_at.timestamp(),
                [limit for limit, _ in limits],
                [window.total_seconds() for _, window in limits],
                KEEP.total_seconds(),
            )
            return None if value is None else int(value)

        # One statement outside an explicit transaction: the function's lock is held until
        # its implicit transaction commits.
        return await self._run(work, transaction=False)

    async def quota_exceeded(
        self, tenant: str, limits: Sequence[tuple[int, timedelta]], now: datetime
    ) -> int | None:
        """See ``SqliteStore.quota_exceeded``: ``reserve_quota``'s answer, holding nothing."""

        async def work(c: asyncpg.Connection) -> int | None:
            # ``gateway_reserve_quota`` in a savepoint rolled back: the answer, not the hold
            # (an intake hold id is never empty).
            savepoint = c.transaction()
            await savepoint.start()
            try:
                value = await c.fetchval(
                    "SELECT gateway_reserve_quota($1, '', '', $2, $2, $3, $4, $5)",
                    tenant,
                    now.timestamp(),
                    [limit for limit, _ in limits],
                    [window.total_seconds() for _, window in limits],
                    KEEP.total_seconds(),
                )
            finally:
                await savepoint.rollback()
            return None if value is None else int(value)

        return await self._run(work)

    async def purge_quota(self, now: datetime) -> int:
        """See ``SqliteStore.purge_quota``."""
        oldest = int((now.timestamp() - KEEP.total_seconds()) // 60) - 1
        value = await self._run(
            lambda c: c.fetchval(_PURGE, now.timestamp(), oldest), transaction=False
        )
        return int(value)

    async def release_quota(self, holder: str) -> int:
        """Give back every hold of ``holder``; returns how many there were."""
        value = await self._run(lambda c: c.fetchval(_RELEASE, holder), transaction=False)
        return int(value)
