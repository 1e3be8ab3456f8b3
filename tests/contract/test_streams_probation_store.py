"""Streams, suppression scopes and probation (issue 15 items 1 and 3) on every backend:
one suppression per scope, the look-ups that ask for a stream, the message's stream through
the queue and the relay's claim, the probation an unblock starts, and the stream settings
of tenants and logins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from gateway.core.model import (
    Event,
    EventType,
    NewMessage,
    Reason,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.records import TenantSettings, hashed_address
from gateway.core.streams import ComplaintScope, Scope, Stream

if TYPE_CHECKING:
    from gateway.core.ports import Store

LEASE = timedelta(seconds=60)
ADDRESS = "cliente@example.com"


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _suppression(
    scope: Scope, reason: SuppressionReason, at: datetime, address: str = ADDRESS
) -> Suppression:
    return Suppression(
        "t1", address, reason, at, None, None, f"{reason.value}/{scope.value}", scope
    )


def _unblock_event(at: datetime) -> object:
    def make(found: Suppression) -> Event:
        return Event(
            None, found.tenant, ADDRESS, EventType.UNSUPPRESSED, at, reason=Reason.ADMIN_UNBLOCK
        )

    return make


async def test_an_opt_out_of_marketing_and_a_hard_bounce_coexist_and_lift_apart(
    store: Store,
) -> None:
    now = now_ms()
    opt_out = _suppression(Scope.MARKETING, SuppressionReason.OPT_OUT, now)
    await store.add_suppression(opt_out)
    # Only marketing is stopped.
    assert await store.suppression_for("t1", ADDRESS, Stream.MARKETING, now) == opt_out
    assert await store.suppression_for("t1", ADDRESS, Stream.TRANSACTIONAL, now) is None
    bounce = _suppression(Scope.ALL, SuppressionReason.NONEXISTENT_ADDRESS, now)
    await store.add_suppression(bounce)
    # ``all`` is found first for either stream; both rows are kept.
    assert await store.suppression_for("t1", ADDRESS, Stream.MARKETING, now) == bounce
    assert await store.suppression_for("t1", ADDRESS, Stream.TRANSACTIONAL, now) == bounce
    listed = await store.list_suppressions("t1", None, 10)
    assert [(s.scope, s.reason) for s in listed] == [
        (Scope.ALL, SuppressionReason.NONEXISTENT_ADDRESS),
        (Scope.MARKETING, SuppressionReason.OPT_OUT),
    ]
    # A page of one still reaches the second scope of the same address.
    first = await store.list_suppressions("t1", None, 1)
    after = f"{first[0].tenant} {first[0].address} {first[0].scope.value}"
    assert await store.list_suppressions("t1", None, 1, after) == [opt_out]
    # Lifting the hard bounce alone leaves the opt-out (legally final) in place.
    lifted = await store.lift_suppressions(
        ADDRESS,
        "t1",
        _unblock_event(now),  # type: ignore[arg-type]
        scope=Scope.ALL,
    )
    assert [s.scope for s, _ in lifted] == [Scope.ALL]
    assert await store.suppression_for("t1", ADDRESS, Stream.TRANSACTIONAL, now) is None
    assert await store.suppression_for("t1", ADDRESS, Stream.MARKETING, now) == opt_out


async def test_keep_permanent_keeps_an_all_scope_suppression_over_a_marketing_opt_out(
    store: Store,
) -> None:
    now = now_ms()
    complaint = _suppression(Scope.ALL, SuppressionReason.COMPLAINT, now)
    await store.add_suppression(complaint)
    event = Event(None, "t1", ADDRESS, EventType.SUPPRESSED, now, reason=Reason.OPT_OUT)
    opt_out = _suppression(Scope.MARKETING, SuppressionReason.OPT_OUT, now)
    assert await store.suppress_with_event(opt_out, event, keep_permanent=True) is None
    assert [s.scope for s in await store.active_suppressions(ADDRESS, "t1", now)] == [Scope.ALL]


async def test_the_relay_batch_look_up_answers_per_stream(store: Store) -> None:
    now = now_ms()
    await store.add_suppression(_suppression(Scope.MARKETING, SuppressionReason.OPT_OUT, now))
    erased = hashed_address("gone@example.com")
    await store.add_suppression(
        _suppression(Scope.TRANSACTIONAL, SuppressionReason.MANUAL, now, erased)
    )
    asked = [
        ("t1", ADDRESS, Stream.MARKETING),
        ("t1", ADDRESS, Stream.TRANSACTIONAL),
        ("t1", "gone@example.com", Stream.TRANSACTIONAL),
        ("t1", "gone@example.com", Stream.MARKETING),
    ]
    found = await store.suppressions_among(asked, now)
    assert set(found) == {
        ("t1", ADDRESS, Stream.MARKETING),
        ("t1", "gone@example.com", Stream.TRANSACTIONAL),
    }
    assert found[("t1", "gone@example.com", Stream.TRANSACTIONAL)].address == erased


async def test_a_message_keeps_its_stream_through_the_queue_and_the_claim(store: Store) -> None:
    now = now_ms()
    for queue_id, stream in (("QM", Stream.MARKETING), ("QT", Stream.TRANSACTIONAL)):
        await store.enqueue(
            NewMessage(
                queue_id=queue_id,
                tenant="t1",
                mail_from="app@sender.example",
                recipients=(f"{queue_id.lower()}@example.com",),
                content=b"Subject: x\r\n\r\nbody\r\n",
                message_id=f"<{queue_id}@test>",
                subject="x",
                received_at=now,
                stream=stream,
            ),
            timedelta(minutes=5),
        )
    assert await store.message_stream("QM") is Stream.MARKETING
    assert await store.message_stream("QT") is Stream.TRANSACTIONAL
    assert await store.message_stream("nope") is None
    claimed = await store.claim_due(now + timedelta(seconds=1), 10, "w1", LEASE)
    assert {d.queue_id: d.stream for d in claimed} == {
        "QM": Stream.MARKETING,
        "QT": Stream.TRANSACTIONAL,
    }
    await store.release_claims("w1")
    with_content, _ = await store.claim_due_with_content(
        now + timedelta(seconds=1), 10, "w2", LEASE
    )
    assert {d.queue_id: d.stream for d in with_content} == {
        "QM": Stream.MARKETING,
        "QT": Stream.TRANSACTIONAL,
    }


async def test_an_unblock_starts_a_probation_that_a_new_block_ends(store: Store) -> None:
    now = now_ms()
    await store.add_suppression(
        _suppression(Scope.ALL, SuppressionReason.REPEATED_FAILURES, now - timedelta(days=2))
    )
    unblocked_at = now - timedelta(days=1)
    lifted = await store.lift_suppressions(
        ADDRESS,
        "t1",
        _unblock_event(unblocked_at),  # type: ignore[arg-type]
        probation=lambda tenant: timedelta(days=30) if tenant == "t1" else None,
    )
    assert len(lifted) == 1
    event_id = lifted[0][1]
    running = await store.probations(ADDRESS, "t1", now)
    assert len(running) == 1
    probation = running[0]
    assert probation.unblock_event_id == event_id
    assert probation.since == unblocked_at
    assert probation.until == unblocked_at + timedelta(days=30)
    assert probation.success_at is None
    assert await store.probations(ADDRESS, "t2", now) == []
    assert await store.probations(ADDRESS, None, now) == running
    # Over once its end passes.
    assert await store.probations(ADDRESS, "t1", unblocked_at + timedelta(days=31)) == []
    # A delivery since the unblock is shown.
    sent_at = now - timedelta(hours=1)
    await store.record_event(
        Event(None, "t1", ADDRESS, EventType.SENT, sent_at, reason=Reason.ACCEPTED)
    )
    assert (await store.probations(ADDRESS, "t1", now))[0].success_at == sent_at
    # A marketing opt-out does not end it; a block of every stream does.
    await store.add_suppression(_suppression(Scope.MARKETING, SuppressionReason.OPT_OUT, now))
    assert len(await store.probations(ADDRESS, "t1", now)) == 1
    await store.add_suppression(_suppression(Scope.ALL, SuppressionReason.PROBATION_FAILURE, now))
    assert await store.probations(ADDRESS, "t1", now) == []
    found = await store.suppression_for("t1", ADDRESS, Stream.TRANSACTIONAL, now)
    assert found is not None
    assert found.reason is SuppressionReason.PROBATION_FAILURE


async def test_an_unblock_without_a_probation_length_starts_none(store: Store) -> None:
    now = now_ms()
    await store.add_suppression(_suppression(Scope.ALL, SuppressionReason.MANUAL, now))
    await store.lift_suppressions(ADDRESS, "t1", _unblock_event(now))  # type: ignore[arg-type]
    assert await store.probations(ADDRESS, "t1", now) == []


async def test_tenant_and_login_stream_settings_round_trip(store: Store) -> None:
    now = now_ms()
    created = await store.create_tenant(
        TenantSettings(tenant=Tenant("shop")), now, credentials=("shop-news", "hash")
    )
    assert created
    fresh = await store.tenant_settings("shop")
    assert fresh is not None
    assert fresh.streams.probation is None
    assert fresh.streams.stream_for("shop-news") is Stream.TRANSACTIONAL
    changes = {
        "probation": timedelta(days=7),
        "default_stream": Stream.MARKETING,
        "complaint_scope": ComplaintScope.ALL,
    }
    assert await store.update_tenant_settings("shop", changes)
    assert await store.set_login_stream("shop", "shop-news", Stream.TRANSACTIONAL)
    assert not await store.set_login_stream("shop", "nobody", Stream.MARKETING)
    for found in (
        await store.tenant_settings("shop"),
        *[s for s in await store.list_tenant_settings() if s.tenant.name == "shop"],
    ):
        assert found is not None
        streams = found.streams
        assert streams.probation == timedelta(days=7)
        assert streams.default_stream is Stream.MARKETING
        assert streams.complaint_scope is ComplaintScope.ALL
        assert streams.logins == (("shop-news", Stream.TRANSACTIONAL),)
        assert found.tenant.streams == streams  # what the intake reads at MAIL
        assert streams.stream_for("shop-news") is Stream.TRANSACTIONAL
        assert streams.stream_for("other") is Stream.MARKETING
        assert streams.complaint(Stream.MARKETING) is Scope.ALL
    assert await store.set_login_stream("shop", "shop-news", None)
    cleared = await store.tenant_settings("shop")
    assert cleared is not None
    assert cleared.streams.logins == ()
