"""SQLite's quota hold (mixed into ``SqliteStore``; the rest is ``store.quota_queries``).

Owns: holding one recipient against a tenant's quotas at ``RCPT`` in the writer (``_hold``),
and settling the holds in the transaction that queues the message (``settle_holds``, called
by ``store.sqlite_writes.enqueue_rows``). Does not own: the limits (the tenant's settings,
applied by ``checks``), the schema (migration 006) or the connection and its writer
(``store.sqlite``).

Usage is counted per tenant and minute (``quota_usage``), the minute a recipient was held
or queued: a window of the last hour covers the minute it starts in, so a recipient stops
counting up to a minute later than exactly one window after. Every write here runs in the
store's single writer, under SQLite's write lock shared by every process on the file: the
count a hold is checked against and the hold itself are one write, so concurrent sessions
and processes never hold more than the quota together.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Collection, Sequence

from gateway.store.mixins import SqliteQueries
from gateway.store.quota_queries import Hold
from gateway.store.rows import KEEP, minute_of
from gateway.store.sql import run_sqlite
from gateway.store.writes import give_back


class SqliteQuotaHold(SqliteQueries):
    """The hold in SQLite's single writer (``store.quota_queries`` does the rest)."""

    async def _hold(self, hold: Hold, *, keep: bool) -> int | None:
        def work(c: sqlite3.Connection) -> int | None:
            if keep:
                return _reserve(c, hold)
            # The hold's own steps, undone: the answer without the hold.
            c.execute("SAVEPOINT quota_check")
            try:
                return _reserve(c, hold)
            finally:
                c.execute("ROLLBACK TO quota_check")
                c.execute("RELEASE quota_check")

        # A hold is worth nothing once its session is gone: no fsync (``store.sqlite``).
        result: int | None = await self._write(work, durable=False)
        return result


def _reserve(c: sqlite3.Connection, hold: Hold) -> int | None:
    """The hold's statements (in the writer's transaction): ``QuotaQueries._hold``'s answer."""
    tenant, holder, address, now = hold.tenant, hold.holder, hold.address, hold.now
    windows, expires = hold.windows, hold.expires
    minute = minute_of(now)
    # Holds whose session died with its process: their recipients count no more.
    expired = c.execute(
        "SELECT minute, count(*) FROM quota_holds WHERE tenant = ? AND expires_at <= ?"
        " GROUP BY minute",
        (tenant, now),
    ).fetchall()
    if expired:
        _give_back(c, [(tenant, m, n) for m, n in expired])
        c.execute("DELETE FROM quota_holds WHERE tenant = ? AND expires_at <= ?", (tenant, now))
    if c.execute(
        "SELECT 1 FROM quota_holds WHERE holder = ? AND address = ?", (holder, address)
    ).fetchone():
        return None  # the same recipient again in the same transaction
    keep = KEEP.total_seconds()
    if c.execute("SELECT 1 FROM quota_tracking WHERE tenant = ?", (tenant,)).fetchone() is None:
        # The tenant's first hold (or its first since it had no quota): count what it
        # queued in the last day and what open transactions hold, once.
        c.execute("DELETE FROM quota_usage WHERE tenant = ?", (tenant,))
        c.execute(
            "INSERT INTO quota_usage (tenant, minute, used) SELECT ?, m, count(*) FROM ("
            " SELECT CAST(at / 60 AS INTEGER) AS m FROM events"
            " WHERE tenant = ? AND type = 'queued' AND at >= ?"
            " UNION ALL SELECT minute FROM quota_holds WHERE tenant = ?) GROUP BY m",
            (tenant, tenant, now - keep - 60, tenant),
        )
        c.execute("INSERT INTO quota_tracking (tenant, since) VALUES (?, ?)", (tenant, now))
    c.execute(
        "DELETE FROM quota_usage WHERE tenant = ? AND minute < ?",
        (tenant, minute_of(now - keep) - 1),
    )
    for index, (limit, window) in enumerate(windows):
        used = c.execute(
            "SELECT coalesce(sum(used), 0) FROM quota_usage WHERE tenant = ? AND minute >= ?",
            (tenant, minute_of(now - window)),
        ).fetchone()[0]
        if used >= limit:
            return index
    c.execute(
        "INSERT INTO quota_holds (holder, address, tenant, minute, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (holder, address, tenant, minute, expires),
    )
    _add(c, tenant, minute, 1)
    return None


def settle_holds(
    c: sqlite3.Connection, tenant: str, holder: str, queued: Collection[str], now: float
) -> None:
    """Inside the enqueue's transaction: the holder's holds become queued recipients.

    Held recipients that were queued keep counting where they were held; held ones that
    were not queued (duplicates of an earlier message) are given back; queued ones without
    a hold (no quota when their transaction began, a bounce notice, a hold that expired)
    count from now on, if the tenant is counted at all.
    """
    held: dict[str, int] = {}
    if holder:
        held = dict(
            c.execute(
                "SELECT address, minute FROM quota_holds WHERE holder = ?", (holder,)
            ).fetchall()
        )
        if held:
            c.execute("DELETE FROM quota_holds WHERE holder = ?", (holder,))
    if c.execute("SELECT 1 FROM quota_tracking WHERE tenant = ?", (tenant,)).fetchone() is None:
        return
    unheld = sum(1 for address in queued if address not in held)
    if unheld:
        _add(c, tenant, minute_of(now), unheld)
    queued = set(queued)
    back = Counter(minute for address, minute in held.items() if address not in queued)
    if back:
        _give_back(c, [(tenant, minute, n) for minute, n in back.items()])


def _add(c: sqlite3.Connection, tenant: str, minute: int, count: int) -> None:
    c.execute(
        "INSERT INTO quota_usage (tenant, minute, used) VALUES (?, ?, ?)"
        " ON CONFLICT (tenant, minute) DO UPDATE SET used = used + excluded.used",
        (tenant, minute, count),
    )


def _give_back(c: sqlite3.Connection, counts: Sequence[tuple[str, int, int]]) -> None:
    """Subtract (tenant, minute, count) from the usage (``store.writes.give_back``)."""
    run_sqlite(c, give_back(list(counts)))
