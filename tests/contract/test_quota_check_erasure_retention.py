"""Quota rows beyond the intake, on every backend (issue 13, item 4's follow-ups).

``quota_exceeded`` (``gateway check``, the admin API's address check) answers as
``reserve_quota`` would, holds and all, and holds nothing; an erasure deletes the erased
address's holds and gives them back; retention (``purge_quota``) gives back and deletes
lapsed holds and deletes usage older than the longest window, for every tenant.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from gateway.core import replies
from gateway.core.model import Reason, Tenant
from gateway.core.ports import MxAnswer, MxHost, Store
from gateway.services.checks import RecipientChecker
from tests.contract.test_quota_holds import DAY, HOUR, LIFETIME, hold
from tests.contract.test_store_contract import WINDOW, message, now_ms

if TYPE_CHECKING:
    from tests.backends import Backend


async def test_quota_exceeded_counts_holds_like_the_intake_and_holds_nothing(
    store: Store, backend: Backend
) -> None:
    now, limits = now_ms(), [(10, DAY), (3, HOUR)]
    assert await store.quota_exceeded("t1", limits, now) is None
    assert await hold(store, "h1", "a@example.com", limits, now) is None
    assert await hold(store, "h2", "b@example.com", limits, now) is None
    assert await store.quota_exceeded("t1", limits, now) is None  # two of three held
    assert await hold(store, "h3", "c@example.com", limits, now) is None
    # Three held, none queued yet: the hourly limit (index 1) has no room, as at RCPT.
    assert await store.quota_exceeded("t1", limits, now) == 1
    assert await hold(store, "h4", "d@example.com", limits, now) == 1
    assert backend.count("quota_holds") == 3  # the checks held nothing
    assert await store.quota_exceeded("t2", limits, now) is None


class _Resolver:
    """Every domain has an MX: DNS is not what these checks are about."""

    async def mx(self, domain: str) -> MxAnswer:
        return MxAnswer((MxHost(10, f"mx.{domain}"),))

    async def addresses(self, host: str) -> tuple[str, ...]:
        return ("127.0.0.2",)


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


async def test_the_address_check_refuses_a_quota_taken_by_holds(store: Store) -> None:
    # ``gateway check`` and the admin API's check (no hold id) count what open
    # transactions hold, as the SMTP RCPT path does; they counted queued events only.
    now = now_ms()
    checker = RecipientChecker(_Resolver(), store, _Clock(now), "off")
    tenant = Tenant("t1", hourly_quota=2)
    assert (await checker.check("x@example.com", tenant)).accepted
    for n in range(2):
        assert await hold(store, f"h{n}", f"r{n}@example.com", [(2, HOUR)], now) is None
    verdict = await checker.check("x@example.com", tenant)
    assert verdict.reason is Reason.QUOTA
    assert verdict.reply is not None
    assert verdict.reply.code == replies.QUOTA_EXHAUSTED.code
    # The intake's own check, with a hold id, gives the same answer.
    assert (await checker.check("x@example.com", tenant, hold="h9")).reason is Reason.QUOTA


async def test_erasure_deletes_the_addresss_holds_and_gives_them_back(
    store: Store, backend: Backend
) -> None:
    now, limits = now_ms(), [(2, HOUR)]
    assert await hold(store, "h1", "ana@example.com", limits, now) is None
    assert await hold(store, "h2", "bob@example.com", limits, now) is None
    assert await store.quota_exceeded("t1", limits, now) == 0

    await store.erase_address("ana@example.com", now)

    assert backend.rows("SELECT holder, address FROM quota_holds") == [("h2", "bob@example.com")]
    assert await store.quota_exceeded("t1", limits, now) is None  # ana's hold given back


async def test_retention_purges_lapsed_holds_and_old_usage_for_every_tenant(
    store: Store, backend: Backend
) -> None:
    now, limits = now_ms(), [(5, HOUR)]
    # t1's session died: its hold lapses; t2's is live; t3 counted usage two days ago.
    assert await hold(store, "dead", "a@example.com", limits, now - 2 * LIFETIME) is None
    assert await hold(store, "live", "b@example.com", limits, now, tenant="t2") is None
    old = now - 2 * DAY
    assert await hold(store, "gone", "c@example.com", limits, old, tenant="t3") is None
    assert await store.release_quota("gone") == 1
    await store.enqueue(message("Q3", ("d@example.com",), tenant="t3", received_at=old), WINDOW)
    assert backend.count("quota_usage", "tenant = 't3'") == 1

    purged = await store.purge_quota(now)

    assert backend.rows("SELECT holder FROM quota_holds") == [("live",)]
    assert backend.count("quota_usage", "tenant = 't3'") == 0
    # The lapsed hold was given back: t1's minute counts nothing any more.
    assert backend.rows("SELECT used FROM quota_usage WHERE tenant = 't1'") in ([], [(0,)])
    assert purged >= 2
    assert await store.quota_exceeded("t1", [(1, timedelta(hours=2))], now) is None
