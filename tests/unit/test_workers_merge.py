"""One service, several worker processes (issue 11, item 4): their metrics and their relay
sites are shown as one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from gateway.core.shaping import SiteState, SiteView, merge_views
from gateway.observe.merge import merge_expositions
from gateway.observe.metrics import Metrics
from tests.observability.samples import exercise

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
# Read from the one store by every worker: the same number, seen once per worker.
STORE_GAUGES = {
    "gateway_queue_recipients",
    "gateway_queue_oldest_age_seconds",
    "gateway_queue_oldest_deferred_age_seconds",
    "gateway_webhook_outbox_pending",
    "gateway_webhook_outbox_oldest_age_seconds",
    "gateway_tenant_quota_used_ratio",
    "gateway_tenant_paused",
}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _worker_text(sessions: int, queued: int) -> str:
    metrics = Metrics()
    exercise(metrics)
    metrics.track_smtp_sessions(lambda: sessions)
    metrics.queue_recipients.labels("queued").set(queued)
    return metrics.exposition()[0].decode()


def test_counters_and_own_gauges_add_up_and_store_wide_gauges_do_not() -> None:
    one, two = _worker_text(3, 40), _worker_text(5, 40)
    merged = merge_expositions([one, two]).decode()
    a, b, m = _samples(one), _samples(two), _samples(merged)
    assert set(m) == set(a)  # nothing lost, nothing invented
    assert m[("gateway_smtp_active_sessions", ())] == 8
    assert m[("gateway_queue_recipients", (("status", "queued"),))] == 40
    for key, value in m.items():
        name = key[0]
        if name.endswith("_created"):
            assert value == min(a[key], b[key])
        elif name in STORE_GAUGES:
            assert value == max(a[key], b[key])
        else:
            assert value == a[key] + b[key], key  # counters, histogram buckets, sums


def test_one_worker_comes_out_as_it_went_in() -> None:
    text = _worker_text(2, 7)
    assert _samples(merge_expositions([text]).decode()) == _samples(text)
    assert merge_expositions([]) == b""


def _view(state: SiteState, **kw: object) -> SiteView:
    base: dict[str, object] = {
        "site": "mx.example", "provider": "other", "state": state, "since": None,
        "until": None, "queued": 1, "active": 1, "connections": 5, "throttled": False,
        "last_error": "",
    }  # fmt: skip
    base.update(kw)
    return SiteView(**base)  # type: ignore[arg-type]


def test_a_site_seen_by_several_workers_is_shown_once_in_its_worst_state() -> None:
    later = T0 + timedelta(minutes=5)
    merged = merge_views(
        [
            [_view(SiteState.ACTIVE, throttled=True), _view(SiteState.ACTIVE, site="other.mx")],
            [_view(SiteState.SUSPENDED, since=later, until=later, last_error="refused")],
            [_view(SiteState.PROBING, since=T0, until=T0)],
        ]
    )
    assert [v.site for v in merged] == ["mx.example", "other.mx"]
    site = merged[0]
    assert site.state is SiteState.SUSPENDED
    assert (site.since, site.until) == (T0, later)
    assert (site.queued, site.active, site.connections) == (3, 3, 15)
    assert site.throttled
    assert site.last_error == "refused"
