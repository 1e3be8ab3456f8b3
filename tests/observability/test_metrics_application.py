"""The metrics the application alerts read (issue 16 item 8): refusals per tenant by the check
that refused, each tenant's quota use (read from the store, set afresh each refresh, the
largest kept when workers' texts are merged), and the feedback-loop reports by result."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from gateway.core.model import Event, EventType, Reason, Tenant
from gateway.core.records import TenantSettings
from gateway.observe.events import ObservedStore, RecipientChanged
from gateway.observe.merge import merge_expositions
from gateway.observe.metrics import Metrics
from tests.observability.samples import T0, TENANT

if TYPE_CHECKING:
    from gateway.core.ports import Store


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def refused(reason: Reason | None, tenant: str = TENANT) -> RecipientChanged:
    return RecipientChanged(
        Event(None, tenant, "x@y.example", EventType.REJECTED, T0, enhanced="5.1.3",
              reason=reason or Reason.LEGACY_UNKNOWN)
    )  # fmt: skip


def test_refusals_are_counted_per_tenant_by_the_check_that_refused() -> None:
    metrics = Metrics()
    for reason in (Reason.INVALID, Reason.INVALID, Reason.TYPO, Reason.SUPPRESSED, None):
        metrics.publish(refused(reason))
    metrics.publish(refused(Reason.NO_SUCH_DOMAIN, tenant="other"))
    name = "gateway_intake_refusals_by_reason_total"
    assert value(metrics, name, tenant=TENANT, reason="invalid") == 2
    assert value(metrics, name, tenant=TENANT, reason="typo") == 1
    assert value(metrics, name, tenant=TENANT, reason="suppressed") == 1
    assert value(metrics, name, tenant=TENANT, reason="other") == 1  # not an intake check
    assert value(metrics, name, tenant="other", reason="no_such_domain") == 1
    # The counter by enhanced code goes on as before.
    assert value(metrics, "gateway_intake_refusals_total", tenant=TENANT, code="5.1.3") == 5


async def test_quota_use_is_read_from_the_store_and_set_afresh(store: Store) -> None:
    metrics = Metrics()
    observed = ObservedStore(store, [metrics])
    now = T0 + timedelta(days=400)
    await store.create_tenant(TenantSettings(Tenant("acme", hourly_quota=10, daily_quota=100)), now)
    for i in range(8):
        assert await store.reserve_quota(
            "acme", f"h{i}", f"r{i}@x.example", [(10, timedelta(hours=1))], now,
            now + timedelta(minutes=5),
        ) is None  # fmt: skip

    await metrics.refresh_gauges(observed, now=now)
    name = "gateway_tenant_quota_used_ratio"
    assert value(metrics, name, tenant="acme", window="hourly") == 0.8
    assert value(metrics, name, tenant="acme", window="daily") == 0.08

    # The hourly quota removed: its series goes at the next refresh.
    await store.update_tenant_settings("acme", {"hourly_quota": None})
    await metrics.refresh_gauges(observed, now=now)
    assert value(metrics, name, tenant="acme", window="hourly") is None
    assert value(metrics, name, tenant="acme", window="daily") == 0.08


def test_feedback_reports_are_counted_by_result() -> None:
    metrics = Metrics()
    metrics.feedback_report("attributed")
    metrics.feedback_report("unattributed")
    metrics.feedback_report("unattributed")
    metrics.feedback_report("made-up")  # never a new label value
    name = "gateway_feedback_reports_total"
    assert value(metrics, name, result="attributed") == 1
    assert value(metrics, name, result="unattributed") == 3
    assert value(metrics, name, result="made-up") is None


def test_workers_quota_use_is_the_same_number_not_a_sum() -> None:
    texts = []
    for used in (0.5, 0.5):
        metrics = Metrics()
        metrics.tenant_quota_used.labels("acme", "daily").set(used)
        metrics.feedback_report("attributed")
        texts.append(metrics.exposition()[0].decode())
    merged = merge_expositions(texts).decode()
    assert 'gateway_tenant_quota_used_ratio{tenant="acme",window="daily"} 0.5' in merged
    assert 'gateway_feedback_reports_total{result="attributed"} 2.0' in merged
