"""The ``Holds`` port (issue 15 items 2 and 4) on every backend: held recipients, their
release in order and exactly once, their expiry, the tenant pause and the relay's skip."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from gateway.core.model import (
    Event,
    EventType,
    NewMessage,
    Reason,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.records import RecipientView
from gateway.core.tenant_policy import PauseCause, SuppressedAction, WindowCounts

if TYPE_CHECKING:
    from gateway.core.ports import Store

LEASE = timedelta(seconds=60)


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _message(queue_id: str, recipients: tuple[str, ...], at: datetime) -> NewMessage:
    return NewMessage(
        queue_id=queue_id,
        tenant="t1",
        mail_from="app@sender.example",
        recipients=recipients,
        content=b"Subject: x\r\n\r\nbody\r\n",
        message_id=f"<{queue_id}@test>",
        subject="x",
        received_at=at,
    )


def _event(kind: EventType, reason: Reason, at: datetime) -> object:
    def make(view: RecipientView) -> Event:
        return Event(
            view.recipient_id, view.tenant, view.address, kind, at, queue_id=view.queue_id,
            reason=reason,
        )  # fmt: skip

    return make


async def _hold(store: Store, queue_id: str, address: str, until: datetime) -> None:
    at = until - timedelta(days=30)  # before anything else the tests record
    made = _event(EventType.HELD, Reason.SUPPRESSED, at)
    held = await store.hold_recipients(queue_id, {address: until}, made)  # type: ignore[arg-type]
    assert [v.address for v in held] == [address]


async def _suppress(store: Store, address: str, at: datetime) -> None:
    await store.add_suppression(
        Suppression("t1", address, SuppressionReason.NONEXISTENT_ADDRESS, at)
    )


async def test_held_rows_are_not_claimed_and_released_once_in_order(store: Store) -> None:
    now = now_ms()
    await store.ensure_tenant(Tenant("t1"))
    await _suppress(store, "gone@example.com", now)
    for n in range(3):
        await store.enqueue(_message(f"Q{n}", ("gone@example.com", "ok@example.com"), now), LEASE)
        await _hold(store, f"Q{n}", "gone@example.com", now + timedelta(days=7))
    views = await store.recipients_of("Q0")
    status = {v.address: v.status for v in views}
    assert status == {"gone@example.com": Status.HELD, "ok@example.com": Status.QUEUED}
    until = await store.held_until([v.recipient_id for v in views])
    assert list(until.values()) == [now + timedelta(days=7)]

    claimed = await store.claim_due(now + timedelta(seconds=1), 100, "node-a", LEASE)
    assert sorted(d.address for d in claimed) == ["ok@example.com"] * 3

    # Still suppressed: nothing is released.
    released_event = _event(EventType.RELEASED, Reason.ADMIN_UNBLOCK, now)
    assert await store.release_held(now, 100, released_event) == []  # type: ignore[arg-type]
    await store.remove_suppression("t1", "gone@example.com")
    # Two releases at once (two workers): each row is released by exactly one of them.
    first, second = await asyncio.gather(
        store.release_held(now, 100, released_event, address="gone@example.com"),  # type: ignore[arg-type]
        store.release_held(now, 100, released_event),  # type: ignore[arg-type]
    )
    released = first + second
    assert sorted(v.queue_id for v in released) == ["Q0", "Q1", "Q2"]
    ids = [v.recipient_id for v in first] or [v.recipient_id for v in second]
    assert ids == sorted(ids)  # the order they were queued
    claimed = await store.claim_due(now + timedelta(seconds=1), 100, "node-a", LEASE)
    assert [d.queue_id for d in claimed] == ["Q0", "Q1", "Q2"]
    assert {d.address for d in claimed} == {"gone@example.com"}
    events = sorted(await store.events_of_message("Q0"), key=lambda e: e.event_id or 0)
    kinds = [e.type for e in events if e.address == "gone@example.com"]
    assert kinds == [EventType.QUEUED, EventType.HELD, EventType.RELEASED]


async def test_held_rows_expire_past_their_window_bounded(store: Store) -> None:
    now = now_ms()
    await store.ensure_tenant(Tenant("t1"))
    await _suppress(store, "gone@example.com", now)
    for n in range(3):
        await store.enqueue(_message(f"Q{n}", ("gone@example.com",), now), LEASE)
        await _hold(store, f"Q{n}", "gone@example.com", now + timedelta(hours=n))
    expired_event = _event(EventType.EXPIRED, Reason.HOLD_WINDOW_EXCEEDED, now)
    later = now + timedelta(hours=1, seconds=1)
    gone = await store.expire_held(later, 1, expired_event)  # type: ignore[arg-type]
    assert [v.queue_id for v in gone] == ["Q0"]  # bounded: one per call, oldest first
    gone = await store.expire_held(later, 10, expired_event)  # type: ignore[arg-type]
    assert [v.queue_id for v in gone] == ["Q1"]
    statuses = [(await store.recipients_of(f"Q{n}"))[0].status for n in range(3)]
    assert statuses == [Status.EXPIRED, Status.EXPIRED, Status.HELD]
    # Content of a held message outlives retention; that of an expired one does not.
    assert await store.purge_content(now + timedelta(days=30), 100) == 2
    assert await store.load_content("Q2") is not None


async def test_admin_hold_and_suppression_hold_do_not_mix(store: Store) -> None:
    now = now_ms()
    await store.ensure_tenant(Tenant("t1"))
    await store.enqueue(_message("Q1", ("gone@example.com", "ok@example.com"), now), LEASE)
    await _hold(store, "Q1", "gone@example.com", now + timedelta(days=1))
    admin = _event(EventType.RELEASED, Reason.RELEASED_BY_ADMIN, now)
    assert await store.set_held("Q1", True, admin) == 1  # type: ignore[arg-type]
    assert await store.set_held("Q1", False, admin) == 1  # type: ignore[arg-type]
    status = {v.address: v.status for v in await store.recipients_of("Q1")}
    assert status == {"gone@example.com": Status.HELD, "ok@example.com": Status.QUEUED}
    # Deleting the message cancels its held recipient too.
    cancel = _event(EventType.EXPIRED, Reason.DELETED_BY_ADMIN, now)
    assert await store.cancel_message("Q1", cancel) == 2  # type: ignore[arg-type]
    assert await store.held_until([v.recipient_id for v in await store.recipients_of("Q1")]) == {}


async def test_policy_settings_and_pause(store: Store) -> None:
    now = now_ms()
    await store.ensure_tenant(Tenant("t1"))
    assert await store.update_tenant_policy("nobody", {"hold_window": timedelta(days=2)}) is False
    assert await store.update_tenant_policy(
        "t1", {"suppressed_action": "hold", "hold_window": timedelta(days=2)}
    )
    settings = await store.tenant_settings("t1")
    assert settings is not None
    assert settings.tenant.policy.suppressed_action is SuppressedAction.HOLD
    assert settings.tenant.policy.hold_window == timedelta(days=2)
    listed = {s.tenant.name: s for s in await store.list_tenant_settings()}
    assert listed["t1"].tenant.policy.hold_window == timedelta(days=2)

    await store.enqueue(_message("Q1", ("a@example.com",), now), LEASE)
    pause = Event(
        None, "t1", "", EventType.TENANT_PAUSED, now, text="storm", reason=Reason.BOUNCE_RATE
    )
    assert await store.set_tenant_paused(
        pause, paused=True, delivery=True, cause=PauseCause.BOUNCE_RATE
    )
    # Paused again (another node): nothing written.
    assert not await store.set_tenant_paused(
        pause, paused=True, delivery=True, cause=PauseCause.BOUNCE_RATE
    )
    assert await store.set_tenant_paused(pause, paused=True, delivery=True, cause=None) is False
    policy = await store.tenant_policy("t1")
    assert policy is not None
    assert policy.paused
    assert policy.pause_cause is PauseCause.BOUNCE_RATE
    assert policy.pause_note == "storm"
    assert policy.paused_at == now
    assert await store.pause_states() == [("t1", True)]
    # Its queue waits: not claimed, no attempt counted.
    assert await store.claim_due(now + timedelta(seconds=1), 10, "n", LEASE) == []
    assert await store.next_due() is None
    # pause_delivery off while paused: the queue flows again.
    await store.update_tenant_policy("t1", {"pause_delivery": False}, delivery=False)
    assert len(await store.claim_due(now + timedelta(seconds=1), 10, "n", LEASE)) == 1

    resume = Event(None, "t1", "", EventType.TENANT_RESUMED, now, reason=Reason.RESUMED_BY_ADMIN)
    assert await store.set_tenant_paused(resume, paused=False, delivery=False, cause=None)
    policy = await store.tenant_policy("t1")
    assert policy is not None
    assert not policy.paused
    assert policy.resumed_at == now
    assert await store.pause_states() == [("t1", False)]
    assert await store.set_tenant_paused(pause, paused=True, delivery=True, cause=None) is True
    missing = Event(None, "zz", "", EventType.TENANT_PAUSED, now, reason=Reason.PAUSED_BY_ADMIN)
    assert await store.set_tenant_paused(missing, paused=True, delivery=True, cause=None) is None
    kinds = [e.type for e in await store.events_for("", "t1", 10)]
    assert EventType.TENANT_PAUSED in kinds
    assert EventType.TENANT_RESUMED in kinds


async def test_outcome_counts(store: Store) -> None:
    now = now_ms()
    for kind, category, n in (
        (EventType.SENT, None, 5), (EventType.BOUNCED, "nonexistent_address", 2),
        (EventType.REPORT, "complaint", 1), (EventType.REPORT, "auto_reply", 3),
        (EventType.DEFERRED, None, 4),
    ):  # fmt: skip
        for i in range(n):
            await store.record_event(
                Event(None, "t1", f"r{i}@example.com", kind, now,
                      category=None if category is None else __import__(
                          "gateway.core.model", fromlist=["Category"]).Category(category),
                      reason=Reason.ACCEPTED)
            )  # fmt: skip
    await store.record_event(
        Event(None, "t1", "old@example.com", EventType.BOUNCED, now - timedelta(days=2),
              reason=Reason.PERMANENT_FAILURE)
    )  # fmt: skip
    counts = await store.outcome_counts("t1", now - timedelta(hours=24))
    assert counts == WindowCounts(sent=5, bounced=2, complaints=1)
    assert await store.outcome_counts("t2", now - timedelta(hours=24)) == WindowCounts()
