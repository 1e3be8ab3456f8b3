"""PostgreSQL's quota hold (mixed into ``PostgresStore``; the rest is ``store.quota_queries``).

Holding a recipient is one call of ``gateway_reserve_quota`` (migration 006), which takes an
advisory lock per tenant, so nodes holding for the same tenant at once take turns; the
enqueue settles the holds in its own statement (``store.postgres_enqueue.ENQUEUE``). Does not
own: the pool or the translation of errors (``store.postgres``), nor the limits
(``checks``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.store.mixins import PostgresQueries
from gateway.store.quota_queries import Hold
from gateway.store.rows import KEEP

if TYPE_CHECKING:
    import asyncpg


class PostgresQuotaHold(PostgresQueries):
    """The hold as one call of ``gateway_reserve_quota`` (``store.quota_queries`` does the
    rest); relies on ``PostgresStore._run``."""

    async def _hold(self, hold: Hold, *, keep: bool) -> int | None:
        args = (
            hold.tenant,
            hold.holder,
            hold.address,
            hold.now,
            hold.expires,
            [limit for limit, _ in hold.windows],
            [window for _, window in hold.windows],
            KEEP.total_seconds(),
        )

        async def work(c: asyncpg.Connection) -> int | None:
            if keep:
                value = await c.fetchval(_RESERVE, *args)
            else:  # in a savepoint rolled back: the answer, not the hold
                savepoint = c.transaction()
                await savepoint.start()
                try:
                    value = await c.fetchval(_RESERVE, *args)
                finally:
                    await savepoint.rollback()
            return None if value is None else int(value)

        # Holding is one statement outside an explicit transaction: the function's lock is
        # held until its implicit transaction commits.
        return await self._run(work, transaction=not keep)


_RESERVE = "SELECT gateway_reserve_quota($1, $2, $3, $4, $5, $6, $7, $8)"
