"""Quota holds and the tenant generation: one contract for SQLite and PostgreSQL.

``reserve_quota`` holds one recipient of an open transaction against a tenant's limits,
counting what every transaction holds and what was queued, atomically across stores (two
SQLite stores on one file stand for two processes; two PostgreSQL stores for two nodes).
``release_quota`` gives a transaction's holds back; ``enqueue`` with ``NewMessage.hold``
settles them in its own transaction. ``tenant_generation`` moves with every change to
tenants, credentials and DKIM keys, whoever makes it, and with nothing else.

Usage is counted by the minute: a recipient leaves an hour's window within a minute after
it turns an hour old. Times are explicit (``now`` arguments), so nothing here waits.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from gateway.core.errors import StoreError
from gateway.core.model import NewMessage, Suppression, SuppressionReason, Tenant
from gateway.core.ports import Store
from tests.backends import Backend
from tests.contract.test_store_contract import WINDOW, message, now_ms

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LIFETIME = timedelta(minutes=15)


@pytest.fixture
async def other(backend: Backend) -> AsyncIterator[Store]:
    """A second store on the same database: another process, or another node."""
    opened = backend.make()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def hold(
    store: Store,
    holder: str,
    address: str,
    limits: list[tuple[int, timedelta]],
    now: datetime,
    tenant: str = "t1",
) -> int | None:
    return await store.reserve_quota(tenant, holder, address, limits, now, now + LIFETIME)


def held(message: NewMessage, holder: str) -> NewMessage:
    return dataclasses.replace(message, hold=holder)


# --- holding -------------------------------------------------------------------------------------


async def test_holds_fill_the_quota_and_no_more(store: Store, backend: Backend) -> None:
    now, limits = now_ms(), [(3, HOUR)]
    answers = [await hold(store, "h1", f"r{n}@example.com", limits, now) for n in range(5)]
    assert answers == [None, None, None, 0, 0]
    # The same recipient again in the same transaction is held already: it costs nothing.
    assert await hold(store, "h1", "r0@example.com", limits, now) is None
    assert await hold(store, "h2", "x@example.com", limits, now) == 0
    # The answer names the first limit that has no room.
    assert await hold(store, "h2", "x@example.com", [(10, DAY), (3, HOUR)], now) == 1
    assert backend.count("quota_holds") == 3
    # Another tenant's quota is its own.
    assert await hold(store, "h3", "x@example.com", limits, now, tenant="t2") is None


async def test_recipients_queued_before_the_first_hold_count(store: Store) -> None:
    now = now_ms()
    await store.enqueue(
        message("Q0", tuple(f"old{n}@example.com" for n in range(5)), received_at=now - 2 * HOUR),
        WINDOW,
    )
    await store.enqueue(message("Q1", ("a@example.com", "b@example.com"), received_at=now), WINDOW)
    # An hour: the two of Q1.
    assert await hold(store, "h1", "c@example.com", [(3, HOUR)], now) is None
    assert await hold(store, "h1", "d@example.com", [(3, HOUR)], now) == 0
    # A day: Q0's five as well, and the hold.
    assert await hold(store, "h2", "e@example.com", [(9, DAY)], now) is None
    assert await hold(store, "h2", "f@example.com", [(9, DAY)], now) == 0


async def test_the_window_slides_by_the_minute(store: Store) -> None:
    start, limits = now_ms(), [(1, HOUR)]
    assert await hold(store, "h1", "a@example.com", limits, start) is None
    await store.enqueue(held(message("Q1", ("a@example.com",), received_at=start), "h1"), WINDOW)
    later = start + timedelta(minutes=59)
    assert await hold(store, "h2", "b@example.com", limits, later) == 0
    past = start + HOUR + timedelta(seconds=61)
    assert await hold(store, "h2", "b@example.com", limits, past) is None


async def test_two_stores_at_once_hold_no_more_than_the_quota(
    store: Store, other: Store, backend: Backend
) -> None:
    now, limits = now_ms(), [(25, HOUR)]
    attempts = [
        (store if n % 2 else other).reserve_quota(
            "t1", f"h{n % 8}", f"r{n}@example.com", limits, now, now + LIFETIME
        )
        for n in range(80)
    ]
    async with asyncio.timeout(30):
        answers = await asyncio.gather(*attempts)
    assert answers.count(None) == 25
    assert answers.count(0) == 55
    assert backend.count("quota_holds") == 25


# --- giving back and settling --------------------------------------------------------------------


async def test_a_released_transaction_gives_its_holds_back(store: Store, backend: Backend) -> None:
    now, limits = now_ms(), [(2, HOUR)]
    assert await hold(store, "h1", "a@example.com", limits, now) is None
    assert await hold(store, "h1", "b@example.com", limits, now) is None
    assert await hold(store, "h2", "c@example.com", limits, now) == 0
    assert await store.release_quota("h1") == 2
    assert await store.release_quota("h1") == 0
    assert backend.count("quota_holds") == 0
    assert await hold(store, "h2", "c@example.com", limits, now) is None
    assert await hold(store, "h2", "d@example.com", limits, now) is None
    assert await hold(store, "h2", "e@example.com", limits, now) == 0


async def test_queued_holds_keep_counting_and_cannot_be_given_back(
    store: Store, other: Store, backend: Backend
) -> None:
    now, limits = now_ms(), [(3, HOUR)]
    for address in ("a@example.com", "b@example.com"):
        assert await hold(store, "h1", address, limits, now) is None
    result = await other.enqueue(
        held(message("Q1", ("a@example.com", "b@example.com"), received_at=now), "h1"), WINDOW
    )
    assert result.queued == ("a@example.com", "b@example.com")
    assert backend.count("quota_holds") == 0
    assert await store.release_quota("h1") == 0
    assert await hold(store, "h2", "c@example.com", limits, now) is None
    assert await hold(store, "h2", "d@example.com", limits, now) == 0


async def test_held_duplicates_of_an_earlier_message_are_given_back(store: Store) -> None:
    now, limits = now_ms(), [(3, HOUR)]
    first = message("Q1", ("a@example.com",), message_id="<m1@app.test>", received_at=now)
    await store.enqueue(first, WINDOW)
    assert await hold(store, "h1", "a@example.com", limits, now) is None
    assert await hold(store, "h1", "b@example.com", limits, now) is None
    assert await hold(store, "h2", "c@example.com", limits, now) == 0  # Q1's a and two holds
    retry = message(
        "Q2", ("a@example.com", "b@example.com"), message_id="<m1@app.test>", received_at=now
    )
    result = await store.enqueue(held(retry, "h1"), WINDOW)
    assert (result.queued, result.duplicates) == (("b@example.com",), ("a@example.com",))
    # a was not queued again: its hold is given back; b is queued and counts.
    assert await hold(store, "h2", "c@example.com", limits, now) is None
    assert await hold(store, "h2", "d@example.com", limits, now) == 0


async def test_a_failing_enqueue_keeps_its_holds(store: Store, backend: Backend) -> None:
    now = now_ms()
    assert await hold(store, "h1", "a@example.com", [(5, HOUR)], now) is None
    await store.enqueue(message("Q1", ("x@example.com",), received_at=now), WINDOW)
    with pytest.raises(StoreError):  # the queue id is taken: nothing of it is written
        await store.enqueue(held(message("Q1", ("a@example.com",), received_at=now), "h1"), WINDOW)
    assert backend.count("quota_holds", "holder = ?", ("h1",)) == 1
    assert await store.release_quota("h1") == 1


async def test_messages_queued_without_a_hold_count_once_the_tenant_is_counted(
    store: Store,
) -> None:
    now, limits = now_ms(), [(3, HOUR)]
    assert await hold(store, "h1", "a@example.com", limits, now) is None
    # A bounce notice, or a transaction that began before the tenant had a quota.
    await store.enqueue(message("Q1", ("b@example.com", "c@example.com"), received_at=now), WINDOW)
    assert await hold(store, "h2", "d@example.com", limits, now) == 0


async def test_holds_of_a_vanished_session_lapse(store: Store, backend: Backend) -> None:
    now, limits = now_ms(), [(1, HOUR)]
    brief = now + timedelta(seconds=30)
    assert await store.reserve_quota("t1", "h1", "a@example.com", limits, now, brief) is None
    assert await hold(store, "h2", "b@example.com", limits, now) == 0
    later = now + timedelta(seconds=31)
    assert await hold(store, "h2", "b@example.com", limits, later) is None
    assert backend.count("quota_holds", "holder = ?", ("h1",)) == 0
    # Its transaction comes back after all: what it queues counts from then on.
    await store.enqueue(held(message("Q1", ("a@example.com",), received_at=later), "h1"), WINDOW)
    assert await hold(store, "h3", "c@example.com", [(2, HOUR)], later) == 0


async def test_a_tenant_left_without_quota_is_counted_afresh_when_it_gets_one(
    store: Store, backend: Backend
) -> None:
    now = now_ms()
    await store.ensure_tenant(Tenant("t1", hourly_quota=5))
    assert await hold(store, "h1", "a@example.com", [(5, HOUR)], now) is None
    await store.enqueue(held(message("Q1", ("a@example.com",), received_at=now), "h1"), WINDOW)
    assert backend.count("quota_tracking", "tenant = ?", ("t1",)) == 1
    await store.update_tenant(Tenant("t1"))  # type: ignore[attr-defined]
    assert backend.count("quota_tracking", "tenant = ?", ("t1",)) == 0
    assert backend.count("quota_usage", "tenant = ?", ("t1",)) == 0
    # Queued while it had no quota: not counted then, found in the events when it has one.
    await store.enqueue(message("Q2", ("b@example.com",), received_at=now), WINDOW)
    assert await hold(store, "h2", "c@example.com", [(3, HOUR)], now) is None
    assert await hold(store, "h2", "d@example.com", [(3, HOUR)], now) == 0


# --- the tenant generation -----------------------------------------------------------------------


async def test_every_change_to_tenants_credentials_and_keys_moves_the_generation(
    store: Store, other: Store
) -> None:
    seen = [await store.tenant_generation()]  # type: ignore[attr-defined]

    async def moved() -> bool:
        seen.append(await store.tenant_generation())  # type: ignore[attr-defined]
        return seen[-1] != seen[-2]

    await other.ensure_tenant(Tenant("t1"))
    assert await moved()
    await other.ensure_tenant(Tenant("t1", hourly_quota=3))  # exists: nothing written
    assert not await moved()
    assert await other.update_tenant_settings("t1", {"hourly_quota": 5})  # type: ignore[attr-defined]
    assert await moved()
    await other.update_tenant(Tenant("t1", ("app.example",)))  # type: ignore[attr-defined]
    assert await moved()
    await other.set_credentials("t1", "t1-user", "scrypt$not-checked-here")
    assert await moved()
    await other.set_dkim_key("t1", "app.example", "s1", "ed25519-sha256", b"pem")  # type: ignore[attr-defined]
    assert await moved()
    # Mail and suppressions are no tenant settings.
    now = now_ms()
    await other.enqueue(message("Q1", received_at=now), WINDOW)
    await other.add_suppression(
        Suppression("t1", "gone@example.com", SuppressionReason.MANUAL, now)
    )
    assert await hold(other, "h1", "a@example.com", [(5, HOUR)], now) is None
    assert not await moved()
