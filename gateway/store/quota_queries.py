"""Quota holds at ``RCPT``, written once for both stores, around each dialect's hold.

Owns: the ``Quotas`` port and retention's ``purge_quota``: holding one recipient against
a tenant's limits (``reserve_quota``) and asking without holding (``quota_exceeded``), both
through the store's own ``_hold`` (SQLite: statements in its single writer,
``store.sqlite_quota``; PostgreSQL: the ``gateway_reserve_quota`` function of migration 006
under a per-tenant advisory lock, ``store.postgres_quota``); giving a transaction's holds
back (``release_quota``); and deleting spent rows. Does not own: the limits (the tenant's
settings, applied by ``checks``) or settling the holds at enqueue (each store's enqueue).

Usage is counted per tenant and minute (``quota_usage``), the minute a recipient was held
or queued: a window of the last hour covers the minute it starts in, so a recipient stops
counting up to a minute later than exactly one window after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gateway.store.mixins import Queries
from gateway.store.rows import KEEP, minute_of
from gateway.store.sql import Script, count
from gateway.store.writes import take_back

#: The holder and address of ``quota_exceeded``'s hold, never committed (an intake hold
#: id is never empty).
CHECK = ""


@dataclass(frozen=True, slots=True)
class Hold:
    """One recipient to hold: ``windows`` are (most recipients, seconds), ``now`` and
    ``expires`` epoch seconds."""

    tenant: str
    holder: str
    address: str
    windows: list[tuple[int, float]]
    now: float
    expires: float


class QuotaQueries(Queries):
    """Quota holds; relies on the store's ``_hold``, ``_transact``."""

    if TYPE_CHECKING:

        async def _hold(self, hold: Hold, *, keep: bool) -> int | None:
            """The dialect's hold: ``None`` when held, else the index of the first window
            without room; ``keep`` false rolls the hold back (the answer alone)."""
            ...

    async def reserve_quota(
        self,
        tenant: str,
        holder: str,
        address: str,
        limits: Sequence[tuple[int, timedelta]],
        now: datetime,
        expires_at: datetime,
    ) -> int | None:
        """Hold one recipient of an open transaction against every limit of its tenant.

        Args:
            tenant: the tenant.
            holder: the transaction's hold id (``NewMessage.hold`` when it is queued).
            address: the canonical recipient; held at most once per holder.
            limits: (most recipients, window) pairs; no window longer than ``rows.KEEP``.
            now: the time of the ``RCPT``.
            expires_at: when this hold is given back if nothing settles or releases it.

        Returns:
            ``None`` when the recipient is held (now or already), else the index in
            ``limits`` of the first limit it would exceed (nothing is held then).
        """
        windows, at, until = _windows(limits), now.timestamp(), expires_at.timestamp()
        return await self._hold(Hold(tenant, holder, address, windows, at, until), keep=True)

    async def quota_exceeded(
        self, tenant: str, limits: Sequence[tuple[int, timedelta]], now: datetime
    ) -> int | None:
        """Whether one more recipient would fit now, counted exactly as ``reserve_quota``
        counts (what every session and node holds or queued), holding nothing: ``None`` when
        it would, else the index of the first limit it would exceed. ``gateway check`` and
        the admin API's address check ask this."""
        at = now.timestamp()
        return await self._hold(Hold(tenant, CHECK, CHECK, _windows(limits), at, at), keep=False)

    async def release_quota(self, holder: str) -> int:
        """Give back every hold of ``holder`` (its transaction ended without a message);
        returns how many there were."""
        # A hold is worth nothing once its session is gone: no fsync (``store.sqlite``).
        return await self._transact(take_back("holder = ?", holder), durable=False)

    async def purge_quota(self, now: datetime) -> int:
        """Retention: give back and delete the holds that lapsed by ``now`` (their session
        died with its process) and delete usage older than the longest window, for every
        tenant (a hold cleans up only its own tenant's); how many rows went."""
        at = now.timestamp()

        def script() -> Script[int]:
            holds = yield from take_back("expires_at <= ?", at)
            usage: int = yield count(
                "DELETE FROM quota_usage WHERE minute < ?",
                minute_of(at - KEEP.total_seconds()) - 1,
            )
            return holds + usage

        return await self._transact(script(), durable=False)


def _windows(limits: Sequence[tuple[int, timedelta]]) -> list[tuple[int, float]]:
    return [(limit, window.total_seconds()) for limit, window in limits]
