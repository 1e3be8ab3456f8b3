"""Metrics counted through ``ObservedStore`` over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.core.model import Category, Event, EventType, Status, Suppression, SuppressionReason
from gateway.core.ports import RecipientView
from gateway.observe.events import DomainEvent, ObservedStore, RecipientChanged
from gateway.observe.metrics import Metrics, run_gauges
from gateway.store.sqlite import SqliteStore
from tests.observability.samples import T0, TENANT, message, outcome
from tests.waiting import wait_until

LEASE = timedelta(minutes=5)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def observed(store: SqliteStore, metrics: Metrics) -> ObservedStore:
    return ObservedStore(store, [metrics])


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_enqueue_counts_messages_and_recipients(
    observed: ObservedStore, metrics: Metrics
) -> None:
    await observed.enqueue(message("q1", "ana@a.example", "bia@b.example"), timedelta(hours=1))
    # The same Message-ID again within the window: 250, not queued again.
    await observed.enqueue(message("q2", "ana@a.example"), timedelta(hours=1))
    # q2's Message-ID differs, so it is not a duplicate; re-send q1's to make one.
    again = message("q1", "ana@a.example")
    await observed.enqueue(
        type(again)(**{**{f: getattr(again, f) for f in again.__slots__}, "queue_id": "q3"}),
        timedelta(hours=1),
    )

    assert value(metrics, "gateway_messages_accepted_total", tenant=TENANT) == 2
    assert value(metrics, "gateway_recipients_accepted_total", tenant=TENANT) == 3
    assert value(metrics, "gateway_recipients_duplicate_total", tenant=TENANT) == 1
    assert (
        value(
            metrics, "gateway_recipient_events_total", tenant=TENANT, event="queued",
            category="none",
        )
        == 3
    )  # fmt: skip


async def test_intake_refusal_is_counted_by_enhanced_code(
    observed: ObservedStore, metrics: Metrics
) -> None:
    for enhanced in ("5.1.1", "5.1.1", "not a code"):
        await observed.record_event(
            Event(None, TENANT, "typo@gmial.com", EventType.REJECTED, T0, reply_code=550,
                  enhanced=enhanced, text="no such domain")
        )  # fmt: skip

    assert value(metrics, "gateway_intake_refusals_total", tenant=TENANT, code="5.1.1") == 2
    assert value(metrics, "gateway_intake_refusals_total", tenant=TENANT, code="other") == 1


async def test_relay_outcomes_count_by_provider_and_time_latency(
    observed: ObservedStore, metrics: Metrics
) -> None:
    await observed.enqueue(message("q1", "ana@gmail.com", "bia@uol.com.br"), timedelta(hours=1))
    claimed = await observed.claim_due(T0 + timedelta(seconds=1), 10, "node-1", LEASE)
    ids = {d.address: d.recipient_id for d in claimed}
    at = T0 + timedelta(seconds=30)

    recorded = await observed.record_outcomes(
        [
            outcome(ids["ana@gmail.com"], "ana@gmail.com", EventType.SENT, at),
            outcome(ids["bia@uol.com.br"], "bia@uol.com.br", EventType.BOUNCED, at,
                    host="mx.uol.com.br", category=Category.SPAM_BLOCKED, code=550,
                    enhanced="5.7.1"),
        ],
        "node-1",
    )  # fmt: skip

    assert len(recorded) == 2
    assert (
        value(metrics, "gateway_deliveries_total", tenant=TENANT, provider="gmail",
              result="sent", category="none")
        == 1
    )  # fmt: skip
    assert (
        value(metrics, "gateway_deliveries_total", tenant=TENANT, provider="uol",
              result="bounced", category="spam_blocked")
        == 1
    )  # fmt: skip
    assert (
        value(metrics, "gateway_bounces_total", tenant=TENANT, category="spam_blocked",
              kind="sync")
        == 1
    )  # fmt: skip
    assert value(metrics, "gateway_accept_to_delivery_seconds_count", provider="gmail") == 1
    assert value(metrics, "gateway_accept_to_delivery_seconds_sum", provider="gmail") == 30
    assert value(metrics, "gateway_accept_to_first_attempt_seconds_count", provider="uol") == 1


async def test_fenced_outcome_publishes_nothing(observed: ObservedStore, metrics: Metrics) -> None:
    await observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))
    [delivery] = await observed.claim_due(T0 + timedelta(seconds=1), 10, "node-1", LEASE)

    recorded = await observed.record_outcomes(
        [outcome(delivery.recipient_id, "ana@gmail.com", EventType.SENT, T0)], "node-2"
    )

    assert recorded == {}
    assert value(metrics, "gateway_deliveries_total", tenant=TENANT, provider="gmail",
                 result="sent", category="none") == 0  # fmt: skip


async def test_reports_complaints_and_sender_config(
    observed: ObservedStore, metrics: Metrics
) -> None:
    await observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))
    [delivery] = await observed.claim_due(T0 + timedelta(seconds=1), 10, "node-1", LEASE)
    rid = delivery.recipient_id
    reports = [
        Event(rid, TENANT, "ana@gmail.com", EventType.REPORT, T0, queue_id="q1",
              category=Category.COMPLAINT, details={"feedback_type": "abuse"}),
        Event(rid, TENANT, "ana@gmail.com", EventType.REPORT, T0, queue_id="q1",
              category=Category.COMPLAINT, details={"feedback_type": "auth-failure"}),
        Event(rid, TENANT, "ana@gmail.com", EventType.REPORT, T0, queue_id="q1",
              category=Category.SENDER_CONFIG, remote_host="mx.terra.com.br"),
        Event(rid, TENANT, "ana@gmail.com", EventType.REPORT, T0, queue_id="q1",
              category=Category.MAILBOX_FULL, details={"action": "delayed"}),
    ]  # fmt: skip
    for report in reports:
        await observed.update_recipient(rid, Status.QUEUED, report)

    assert value(metrics, "gateway_complaints_total", tenant=TENANT, feedback_type="abuse") == 1
    assert (
        value(metrics, "gateway_complaints_total", tenant=TENANT, feedback_type="auth-failure") == 1
    )
    assert (
        value(metrics, "gateway_sender_config_failures_total", tenant=TENANT, provider="terra") == 1
    )
    # auth-failure: the receiver says our authentication fails — an operator problem too.
    assert (
        value(metrics, "gateway_sender_config_failures_total", tenant=TENANT, provider="other") == 1
    )
    # A delay notice is not a bounce.
    assert value(metrics, "gateway_bounces_total", tenant=TENANT, category="mailbox_full",
                 kind="async") == 0  # fmt: skip


async def test_suppressions_added_and_removed(observed: ObservedStore, metrics: Metrics) -> None:
    await observed.add_suppression(
        Suppression(TENANT, "ana@gmail.com", SuppressionReason.OPT_OUT, T0)
    )
    assert await observed.remove_suppression(None, "ana@gmail.com") == 1
    assert await observed.remove_suppression(None, "ana@gmail.com") == 0

    added = value(
        metrics, "gateway_suppressions_added_total", tenant=TENANT, reason="opt_out", scope="all"
    )
    assert added == 1
    assert value(metrics, "gateway_suppressions_removed_total", tenant="all") == 1


async def test_queue_gauges_from_the_store(
    observed: ObservedStore, metrics: Metrics, store: SqliteStore
) -> None:
    await observed.enqueue(message("q1", "ana@gmail.com", "bia@uol.com.br"), timedelta(hours=1))
    claimed = await observed.claim_due(T0 + timedelta(seconds=1), 1, "node-1", LEASE)
    await observed.record_outcomes(
        [outcome(claimed[0].recipient_id, claimed[0].address, EventType.DEFERRED,
                 T0 + timedelta(seconds=2), code=451, enhanced="4.7.0")],
        "node-1",
    )  # fmt: skip

    await metrics.refresh_gauges(observed, now=T0 + timedelta(minutes=10))

    assert value(metrics, "gateway_queue_recipients", status="queued") == 1
    assert value(metrics, "gateway_queue_recipients", status="deferred") == 1
    assert value(metrics, "gateway_queue_recipients", status="held") == 0
    assert value(metrics, "gateway_queue_oldest_deferred_age_seconds") == 600
    assert value(metrics, "gateway_webhook_outbox_pending") == 0


async def test_run_gauges_refreshes_then_stops(observed: ObservedStore, metrics: Metrics) -> None:
    await observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))
    stopping = asyncio.Event()
    async with asyncio.timeout(5):
        task = asyncio.create_task(
            run_gauges(observed, metrics, stopping, interval=timedelta(milliseconds=20))
        )
        await wait_until(
            lambda: value(metrics, "gateway_queue_recipients", status="queued") == 1,
            what="the queue gauge",
        )
        stopping.set()
        await task


async def test_a_failing_sink_does_not_fail_the_write(store: SqliteStore, metrics: Metrics) -> None:
    class Broken:
        def publish(self, event: DomainEvent) -> None:
            raise RuntimeError("sink bug")

    observed = ObservedStore(store, [Broken(), metrics])
    result = await observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))

    assert result.queued == ("ana@gmail.com",)
    assert observed.sink_errors == 2  # MessageAccepted + one RecipientChanged
    assert value(metrics, "gateway_messages_accepted_total", tenant=TENANT) == 1


def test_sink_failures_are_labelled_from_a_bounded_set(metrics: Metrics) -> None:
    for name in ("Metrics", "WebhookOutbox", "WebhookOutbox", "Broken", "a@b.example"):
        metrics.sink_failed(name)
    assert value(metrics, "gateway_events_dropped_total", sink="metrics") == 1
    assert value(metrics, "gateway_events_dropped_total", sink="webhooks") == 2
    assert value(metrics, "gateway_events_dropped_total", sink="other") == 2


async def test_a_failing_sink_error_hook_does_not_fail_the_write(
    store: SqliteStore,
) -> None:
    class Broken:
        def publish(self, event: DomainEvent) -> None:
            raise RuntimeError("sink bug")

    def hook(sink: str) -> None:
        raise RuntimeError("hook bug")

    observed = ObservedStore(store, [Broken()], on_sink_error=hook)
    result = await observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))

    assert result.queued == ("ana@gmail.com",)
    assert observed.sink_errors == 2


async def test_failed_write_publishes_nothing(store: SqliteStore) -> None:
    seen: list[DomainEvent] = []

    class Recorder:
        def publish(self, event: DomainEvent) -> None:
            seen.append(event)

    observed = ObservedStore(store, [Recorder()])
    await store.close()
    with pytest.raises(Exception, match="closed"):
        await observed.record_event(Event(None, TENANT, "a@b.example", EventType.REJECTED, T0))
    assert seen == []
    await store.open()  # the fixture closes it again


async def test_other_methods_are_delegated(observed: ObservedStore) -> None:
    await observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))
    [view] = await observed.recipients_of("q1")  # not defined on the wrapper
    assert view.address == "ana@gmail.com"
    events = await observed.events_for("ana@gmail.com", TENANT, 10)
    assert [e.type for e in events] == [EventType.QUEUED]


async def test_sinks_see_the_stored_event_id(store: SqliteStore) -> None:
    seen: list[DomainEvent] = []

    class Recorder:
        def publish(self, event: DomainEvent) -> None:
            seen.append(event)

    observed = ObservedStore(store, [Recorder()])
    event_id = await observed.record_event(
        Event(None, TENANT, "a@b.example", EventType.REJECTED, T0)
    )

    [change] = seen
    assert isinstance(change, RecipientChanged)
    assert change.event.event_id == event_id


async def test_exposition_is_prometheus_text_without_addresses(
    observed: ObservedStore, metrics: Metrics
) -> None:
    await observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))
    await observed.record_event(
        Event(None, TENANT, "typo@gmial.com", EventType.REJECTED, T0, enhanced="5.1.2",
              text="Did you mean gmail.com?")
    )  # fmt: skip

    body, content_type = metrics.exposition()

    assert content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"gateway_messages_accepted", "gateway_intake_refusals"} <= names
    assert "@" not in text
    assert "gmial" not in text


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.messages_accepted.labels(TENANT).inc()
    assert second.registry.get_sample_value(
        "gateway_messages_accepted_total", {"tenant": TENANT}
    ) is None  # fmt: skip


async def test_admin_suppress_and_unblock_are_observed(
    observed: ObservedStore, metrics: Metrics
) -> None:
    seen: list[DomainEvent] = []

    class Recorder:
        def publish(self, event: DomainEvent) -> None:
            seen.append(event)

    observed.add_sink(Recorder())
    suppression = Suppression(TENANT, "ana@gmail.com", SuppressionReason.MANUAL, T0)
    stored = await observed.suppress_with_event(
        suppression,
        Event(None, TENANT, "ana@gmail.com", EventType.SUPPRESSED, T0, reason="manual"),
    )
    assert stored is not None
    lifted = await observed.lift_suppressions(
        "ana@gmail.com",
        None,
        lambda found: Event(None, found.tenant, found.address, EventType.UNSUPPRESSED, T0,
                            reason="admin_unblock"),
    )  # fmt: skip

    assert len(lifted) == 1
    added = value(
        metrics, "gateway_suppressions_added_total", tenant=TENANT, reason="manual", scope="all"
    )
    assert added == 1
    assert value(metrics, "gateway_suppressions_removed_total", tenant=TENANT) == 1
    unsuppressed = [
        e
        for e in seen
        if isinstance(e, RecipientChanged) and e.event.type is EventType.UNSUPPRESSED
    ]
    assert [e.event.event_id for e in unsuppressed] == [lifted[0][1]]


async def test_admin_hold_and_cancel_are_observed(
    observed: ObservedStore, metrics: Metrics
) -> None:
    await observed.enqueue(message("q1", "ana@gmail.com"), timedelta(hours=1))

    def event_for(kind: EventType) -> Callable[[RecipientView], Event]:
        return lambda view: Event(view.recipient_id, TENANT, view.address, kind, T0, queue_id="q1")

    assert await observed.set_held("q1", True, event_for(EventType.HELD)) == 1
    assert await observed.cancel_message("q1", event_for(EventType.EXPIRED)) == 1

    assert value(metrics, "gateway_recipient_events_total", tenant=TENANT, event="held",
                 category="none") == 1  # fmt: skip
    assert value(metrics, "gateway_deliveries_total", tenant=TENANT, provider="other",
                 result="expired", category="none") == 1  # fmt: skip
