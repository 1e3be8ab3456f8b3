"""The metrics fed by the store poll and by hooks: oldest waiting recipient, open SMTP sessions,
DNS lookups and their latency."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from gateway.core.model import Event, EventType
from gateway.core.ports import RecipientView
from gateway.observe.events import ObservedStore
from gateway.observe.metrics import Metrics
from gateway.store.sqlite import SqliteStore
from tests.observability.samples import T0, message, outcome

LEASE = timedelta(minutes=5)


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_oldest_waiting_recipient_counts_queued_and_deferred_not_held(
    store: SqliteStore,
) -> None:
    metrics = Metrics()
    observed = ObservedStore(store, [metrics])
    await metrics.refresh_gauges(observed, now=T0)
    assert value(metrics, "gateway_queue_oldest_age_seconds") == 0

    await observed.enqueue(message("q-old", "ana@gmail.com"), timedelta(hours=1))
    await observed.enqueue(
        message("q-new", "bia@uol.com.br", at=T0 + timedelta(minutes=30)), timedelta(hours=1)
    )
    await metrics.refresh_gauges(observed, now=T0 + timedelta(hours=1))
    # Nothing deferred yet: the deferred-only gauge stays 0, the new one sees the queue.
    assert value(metrics, "gateway_queue_oldest_age_seconds") == 3600
    assert value(metrics, "gateway_queue_oldest_deferred_age_seconds") == 0

    # The oldest one delivered: the next oldest waiting is 30 minutes younger.
    claimed = [
        d
        for d in await observed.claim_due(T0 + timedelta(hours=1), 10, "n", LEASE)
        if d.queue_id == "q-old"
    ]
    await observed.record_outcomes(
        [outcome(claimed[0].recipient_id, "ana@gmail.com", EventType.SENT,
                 T0 + timedelta(hours=1), queue_id="q-old")],
        "n",
    )  # fmt: skip
    await metrics.refresh_gauges(observed, now=T0 + timedelta(hours=1))
    assert value(metrics, "gateway_queue_oldest_age_seconds") == 1800

    # Held by an operator: not "waiting", so not an alert.
    await store.set_held("q-new", True, _held_event)
    await metrics.refresh_gauges(observed, now=T0 + timedelta(hours=1))
    assert value(metrics, "gateway_queue_oldest_age_seconds") == 0


def _held_event(view: RecipientView) -> Event:
    return Event(view.recipient_id, view.tenant, view.address, EventType.HELD, T0,
                 queue_id=view.queue_id)  # fmt: skip


def test_smtp_sessions_are_read_at_scrape_time() -> None:
    metrics = Metrics()
    assert value(metrics, "gateway_smtp_active_sessions") == 0
    open_sessions = [2, 1]
    metrics.track_smtp_sessions(lambda: sum(open_sessions))
    assert value(metrics, "gateway_smtp_active_sessions") == 3
    open_sessions.append(4)
    assert value(metrics, "gateway_smtp_active_sessions") == 7

    def broken() -> int:
        raise RuntimeError("listener gone")

    metrics.track_smtp_sessions(broken)
    assert value(metrics, "gateway_smtp_active_sessions") == 0  # and the scrape still works
    assert b"gateway_smtp_active_sessions 0.0" in metrics.exposition()[0]


def test_dns_lookups_and_latency_have_bounded_labels() -> None:
    metrics = Metrics()
    metrics.observe_dns("MX", "answer", 0.02)
    metrics.observe_dns("mx", "nxdomain", 0.003)
    metrics.observe_dns("A", "cached", 0.5)  # a cache hit records no latency
    metrics.observe_dns("AAAA", "timeout", 5.0)
    metrics.observe_dns("mx.example.com.br", "weird remote text", 0.1)  # folded to "other"
    assert value(metrics, "gateway_dns_lookups_total", kind="mx", outcome="answer") == 1
    assert value(metrics, "gateway_dns_lookups_total", kind="mx", outcome="nxdomain") == 1
    assert value(metrics, "gateway_dns_lookups_total", kind="a", outcome="cached") == 1
    assert value(metrics, "gateway_dns_lookups_total", kind="other", outcome="other") == 1
    assert value(metrics, "gateway_dns_lookup_duration_seconds_count", kind="mx") == 2
    assert value(metrics, "gateway_dns_lookup_duration_seconds_count", kind="a") is None
    assert value(metrics, "gateway_dns_lookup_duration_seconds_bucket", kind="aaaa", le="5.0") == 1
    body = metrics.exposition()[0].decode()
    labels = {
        (s.labels.get("kind"), s.labels.get("outcome"))
        for family in text_string_to_metric_families(body)
        if family.name.startswith("gateway_dns_")
        for s in family.samples
    }
    assert all(kind in {"mx", "a", "aaaa", "other"} for kind, _ in labels)
    assert "example" not in body
