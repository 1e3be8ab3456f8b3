"""Prometheus metrics: counters and histograms from domain events, gauges from the queue.

Owns: every ``gateway_*`` metric, its labels and buckets, the text exposition served at
``/metrics``, and the periodic queue-gauge refresh (``run_gauges``). Does not own: what
happened (``events``), nor the HTTP route (``admin``).

Labels are bounded (docs/style.md §8): tenant, event type, category, suppression
reason, the provider family from the fixed list (``core.routing.provider_of``), an RFC 3463
enhanced code from our own reply catalogue, a result from a fixed set, a DNS record type and
outcome from fixed sets. Never an address, a host name or remote text.

Fed three ways: domain events (``publish``), the store read every 15 s (``run_gauges``), and
hooks the composition root wires in — ``track_smtp_sessions`` (read at scrape time) and
``observe_dns`` (called by the DNS adapter). Each ``Metrics`` owns its own
``CollectorRegistry``: no global state, so every test (and every in-process gateway) starts
from zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from gateway.core.errors import StoreError
from gateway.core.lifecycle import effect_of_event
from gateway.core.model import Category, EventType, Reason, Status
from gateway.core.policy import needs_alert
from gateway.core.routing import provider_of
from gateway.core.shaping import Change, SiteState, SiteView
from gateway.observe.events import (
    DomainEvent,
    MessageAccepted,
    RecipientChanged,
    SuppressionAdded,
    SuppressionRemoved,
)
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from gateway.core.ports import Gauges

log = logging.getLogger("gateway.observe.metrics")

NONE = "none"  # the label value for "no category"
ALL_TENANTS = "all"  # an unblock without a tenant lifts the address everywhere

# From half a second (a local relay) to the 5-day queue lifetime (RFC 5321 §4.5.4.1).
LATENCY_BUCKETS = (
    0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
    86400, 2 * 86400, 5 * 86400,
)  # fmt: skip

_DELIVERY_EVENTS = {
    EventType.SENT: "sent",
    EventType.DEFERRED: "deferred",
    EventType.BOUNCED: "bounced",
    EventType.EXPIRED: "expired",
}
# Alerts (``core.policy.needs_alert``) that blame our own set-up: SPF, DKIM, DMARC, PTR, TLS.
_OUR_SETUP_ALERTS = frozenset({"sender_config", "auth_failure"})
_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
# RFC 5965 §7.3 feedback types, plus the registered extensions; anything else is "other".
_FEEDBACK_TYPES = frozenset({"abuse", "fraud", "virus", "other", "not-spam", "auth-failure"})
QUEUE_STATUSES = (Status.QUEUED, Status.DEFERRED, Status.HELD)
# The ``reason`` label of ``gateway_intake_refusals_by_reason_total``: the intake's checks.
_REFUSAL_REASONS = frozenset(
    {
        Reason.INVALID,
        Reason.TYPO,
        Reason.NO_SUCH_DOMAIN,
        Reason.NULL_MX,
        Reason.DNS_TEMPFAIL,
        Reason.SUPPRESSED,
        Reason.QUOTA,
        Reason.TOO_MANY_RECIPIENTS,
        Reason.STORE_UNAVAILABLE,
    }
)
FEEDBACK_RESULTS = ("attributed", "unattributed")
WEBHOOK_RESULTS = ("delivered", "retry", "gave_up", "gone", "refused")
# The ``sink`` label of ``gateway_events_dropped_total``: the event sinks the composition root
# wires into ``ObservedStore``, by class name; any other sink is "other".
EVENT_SINKS = {"Metrics": "metrics", "WebhookOutbox": "webhooks"}
# DNS label values (``observe_dns``): the record types the relay and intake ask for, and what
# came back. Anything else is folded into "other", so a caller cannot grow the label set.
DNS_KINDS = ("mx", "a", "aaaa", "txt", "ptr")
DNS_OUTCOMES = ("answer", "nxdomain", "nodata", "timeout", "servfail", "error", "cached")
# From a cached answer on loopback (1 ms) to dns.timeout's worst case.
DNS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The gateway's metrics, an ``EventSink``.

    Args:
        registry: where the metrics live; a fresh private one by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self.messages_accepted = Counter(
            "gateway_messages_accepted_total",
            "Messages accepted (committed before the 250), by tenant.",
            ["tenant"],
            registry=r,
        )
        self.recipients_accepted = Counter(
            "gateway_recipients_accepted_total",
            "Recipients queued at intake, by tenant.",
            ["tenant"],
            registry=r,
        )
        self.recipients_duplicate = Counter(
            "gateway_recipients_duplicate_total",
            "Recipients answered 250 but not queued again (same Message-ID in the window).",
            ["tenant"],
            registry=r,
        )
        self.recipient_events = Counter(
            "gateway_recipient_events_total",
            "Event rows written for recipients, by event type and category.",
            ["tenant", "event", "category"],
            registry=r,
        )
        self.intake_refusals = Counter(
            "gateway_intake_refusals_total",
            "Recipients refused at RCPT, by the reply's RFC 3463 enhanced code.",
            ["tenant", "code"],
            registry=r,
        )
        self.intake_refusal_reasons = Counter(
            "gateway_intake_refusals_by_reason_total",
            "Recipients refused at RCPT, by the check that refused them (invalid, typo,"
            " no_such_domain, null_mx, dns_tempfail, suppressed, quota, too_many_recipients,"
            " store_unavailable; anything else is other).",
            ["tenant", "reason"],
            registry=r,
        )
        self.deliveries = Counter(
            "gateway_deliveries_total",
            "Delivery attempts and expiries, by destination provider, result and category.",
            ["tenant", "provider", "result", "category"],
            registry=r,
        )
        self.bounces = Counter(
            "gateway_bounces_total",
            "Final failures: kind=sync (5xx from the relay) or async (a DSN on the return path).",
            ["tenant", "category", "kind"],
            registry=r,
        )
        self.sender_config_failures = Counter(
            "gateway_sender_config_failures_total",
            "Refusals blaming our own set-up (SPF, DKIM, DMARC, PTR, TLS): alert the operator.",
            ["tenant", "provider"],
            registry=r,
        )
        self.complaints = Counter(
            "gateway_complaints_total",
            "ARF complaints received, by feedback type.",
            ["tenant", "feedback_type"],
            registry=r,
        )
        self.suppressions_added = Counter(
            "gateway_suppressions_added_total",
            "Addresses suppressed, by reason and scope (all, marketing, transactional).",
            ["tenant", "reason", "scope"],
            registry=r,
        )
        self.stream_messages = Counter(
            "gateway_stream_messages_accepted_total",
            "Messages accepted, by tenant and stream (transactional, marketing).",
            ["tenant", "stream"],
            registry=r,
        )
        self.suppressions_removed = Counter(
            "gateway_suppressions_removed_total",
            "Suppressions lifted (unblocks); tenant=all when lifted in every tenant.",
            ["tenant"],
            registry=r,
        )
        self.accept_to_first_attempt = Histogram(
            "gateway_accept_to_first_attempt_seconds",
            "Time from the 250 at intake to the recipient's first delivery attempt.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.accept_to_delivery = Histogram(
            "gateway_accept_to_delivery_seconds",
            "Time from the 250 at intake to the destination's 250 (sent).",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_recipients = Gauge(
            "gateway_queue_recipients",
            "Recipients waiting, by status (queued, deferred, held).",
            ["status"],
            registry=r,
        )
        self.queue_oldest_age = Gauge(
            "gateway_queue_oldest_age_seconds",
            "Age (since intake) of the oldest recipient still waiting: queued or deferred,"
            " held excluded (0 when none).",
            registry=r,
        )
        self.smtp_sessions = Gauge(
            "gateway_smtp_active_sessions",
            "SMTP sessions open on the intake and bounce listeners, read at scrape time.",
            registry=r,
        )
        self.smtp_sessions.set(0)
        self.dns_lookups = Counter(
            "gateway_dns_lookups_total",
            "DNS lookups by record type and outcome (cached = answered from our TTL cache).",
            ["kind", "outcome"],
            registry=r,
        )
        self.dns_duration = Histogram(
            "gateway_dns_lookup_duration_seconds",
            "Time a DNS lookup that went to the network took, by record type.",
            ["kind"],
            buckets=DNS_BUCKETS,
            registry=r,
        )
        self.queue_oldest_deferred_age = Gauge(
            "gateway_queue_oldest_deferred_age_seconds",
            "Age of the oldest message with a deferred recipient (0 when none).",
            registry=r,
        )
        self.queue_refresh_errors = Counter(
            "gateway_queue_refresh_errors_total",
            "Queue gauge refreshes that failed (store unavailable).",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "gateway_webhook_deliveries_total",
            "Webhook POSTs by result: delivered, retry, gave_up, gone (410), refused (target).",
            ["tenant", "result"],
            registry=r,
        )
        self.webhook_outbox_pending = Gauge(
            "gateway_webhook_outbox_pending",
            "Webhook payloads waiting in the outbox.",
            registry=r,
        )
        self.webhook_outbox_oldest_age = Gauge(
            "gateway_webhook_outbox_oldest_age_seconds",
            "Age of the oldest webhook payload still pending (0 when none).",
            registry=r,
        )
        self.site_changes = Counter(
            "gateway_relay_site_changes_total",
            "Automatic changes of a destination site by its health and shaping (suspended,"
            " probing, resumed, throttled, recovered), by provider family.",
            ["provider", "change"],
            registry=self.registry,
        )
        self.sites = Gauge(
            "gateway_relay_sites",
            "Destination sites the relay holds, by state (active, suspended, probing).",
            ["state"],
            registry=self.registry,
        )
        self.sites_throttled = Gauge(
            "gateway_relay_sites_throttled",
            "Destination sites whose limits are lowered by a throttling reply.",
            registry=self.registry,
        )
        self.ready_recipients = Gauge(
            "gateway_relay_ready_recipients",
            "Recipients waiting in memory for their site's turn (the rest wait in the store).",
            registry=self.registry,
        )
        self.feedback_reports = Counter(
            "gateway_feedback_reports_total",
            "ARF reports received at bounce.fbl_address, by result: attributed (to a"
            " recipient, by return-path token or Message-ID) or unattributed (stored only).",
            ["result"],
            registry=r,
        )
        self.tenant_quota_used = Gauge(
            "gateway_tenant_quota_used_ratio",
            "Share of each tenant's quota used in its window (hourly, daily): 1 is exhausted."
            " Read from the store; tenants without that quota have no series.",
            ["tenant", "window"],
            registry=r,
        )
        self.tenant_paused = Gauge(
            "gateway_tenant_paused",
            "1 while a tenant is paused (its new mail gets 451 4.7.1; issue 15), 0 once"
            " resumed. Read from the store; tenants never paused have no series.",
            ["tenant"],
            registry=r,
        )
        self.events_dropped = Counter(
            "gateway_events_dropped_total",
            "Domain events a sink failed to take (it raised; the write itself had committed).",
            ["sink"],
            registry=r,
        )

    # --- the sink -------------------------------------------------------------------------------

    def _labels(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, remembered: the hot paths (every recipient, every DNS
        answer) skip prometheus_client's validation and lock. Children are never removed."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def publish(self, event: DomainEvent) -> None:
        """Count one domain event (``EventSink``)."""
        match event:
            case MessageAccepted():
                if event.queued:
                    self._labels(self.messages_accepted, event.tenant).inc()
                    self._labels(self.stream_messages, event.tenant, event.stream).inc()
                    self._labels(self.recipients_accepted, event.tenant).inc(event.queued)
                if event.duplicates:
                    self._labels(self.recipients_duplicate, event.tenant).inc(event.duplicates)
            case RecipientChanged():
                self._recipient(event)
            case SuppressionAdded(suppression=s):
                self._labels(self.suppressions_added, s.tenant, s.reason.value, s.scope.value).inc()
            case SuppressionRemoved():
                self.suppressions_removed.labels(event.tenant or ALL_TENANTS).inc(event.count)

    def _recipient(self, change: RecipientChanged) -> None:
        ev = change.event
        category = ev.category.value if ev.category else NONE
        self._labels(self.recipient_events, ev.tenant, ev.type.value, category).inc()
        provider = provider_of(ev.remote_host) if ev.remote_host else "other"
        if ev.type is EventType.REJECTED:
            code = ev.enhanced if ev.enhanced and _ENHANCED.fullmatch(ev.enhanced) else "other"
            self._labels(self.intake_refusals, ev.tenant, code).inc()
            reason = ev.reason.value if ev.reason in _REFUSAL_REASONS else "other"
            self._labels(self.intake_refusal_reasons, ev.tenant, reason).inc()
        result = _DELIVERY_EVENTS.get(ev.type)
        if result is not None:
            self._labels(self.deliveries, ev.tenant, provider, result, category).inc()
        if needs_alert(ev.category, ev.details.get("feedback_type")) in _OUR_SETUP_ALERTS:
            # An ARF auth-failure report is the receiver telling us our SPF/DKIM/DMARC fails.
            self._labels(self.sender_config_failures, ev.tenant, provider).inc()
        effect = effect_of_event(ev)
        if effect is not None and effect.counts_as is Status.BOUNCED:
            # A final failure that bounced (an expiry is counted as such in deliveries).
            kind = "async" if ev.type is EventType.REPORT else "sync"
            self._labels(self.bounces, ev.tenant, category, kind).inc()
        if ev.type is EventType.REPORT and ev.category is Category.COMPLAINT:
            feedback = ev.details.get("feedback_type", "other").lower()
            feedback = feedback if feedback in _FEEDBACK_TYPES else "other"
            self._labels(self.complaints, ev.tenant, feedback).inc()
        if change.received_at is not None:
            waited = max((ev.at - change.received_at).total_seconds(), 0.0)
            if change.first_attempt:
                self._labels(self.accept_to_first_attempt, provider).observe(waited)
            if ev.type is EventType.SENT:
                self._labels(self.accept_to_delivery, provider).observe(waited)

    # --- webhooks and gauges ----------------------------------------------------------------

    def webhook_result(self, tenant: str, result: str) -> None:
        """Count one webhook POST outcome (one of ``WEBHOOK_RESULTS``)."""
        self.webhook_deliveries.labels(tenant, result).inc()

    def feedback_report(self, result: str) -> None:
        """Count one ARF report taken at ``bounce.fbl_address`` (one of ``FEEDBACK_RESULTS``;
        anything else counts as unattributed)."""
        self.feedback_reports.labels(result if result in FEEDBACK_RESULTS else "unattributed").inc()

    def sink_failed(self, sink: str) -> None:
        """Count one event a sink failed to take (``ObservedStore``'s ``on_sink_error``).

        Args:
            sink: the sink's class name; ``EVENT_SINKS`` maps it to the label, else "other".
        """
        self.events_dropped.labels(EVENT_SINKS.get(sink, "other")).inc()

    def track_smtp_sessions(self, read: Callable[[], int]) -> None:
        """Read the open SMTP sessions from ``read`` at every scrape.

        Args:
            read: returns the current count, e.g.
                ``lambda: sum(listener.sessions for listener in gw.listeners)``. It runs in
                the scrape, so it must be cheap and must not block; if it raises, the gauge
                reads 0 rather than failing the whole scrape.
        """

        def safe() -> float:
            try:
                return float(read())
            except Exception:  # a broken callback must not break /metrics
                return 0.0

        self.smtp_sessions.set_function(safe)

    def site_changed(self, provider: str, change: Change) -> None:
        """The relay changed a site on its own (``core.shaping``)."""
        self._labels(self.site_changes, provider, change.kind.value).inc()

    def track_sites(self, read: Callable[[], Sequence[SiteView]]) -> None:
        """Read the relay's sites at scrape time (states, throttling, waiting recipients)."""

        def count(state: str) -> Callable[[], float]:
            return lambda: float(sum(1 for view in read() if view.state == state))

        for state in SiteState:
            self.sites.labels(state.value).set_function(count(state.value))
        self.sites_throttled.set_function(lambda: float(sum(v.throttled for v in read())))
        self.ready_recipients.set_function(lambda: float(sum(v.queued for v in read())))

    def observe_dns(self, kind: str, outcome: str, seconds: float | None = None) -> None:
        """Count one DNS lookup and, when it went to the network, its duration.

        Called by ``gateway.services.dns`` (the adapter passes this method in; metrics never imports
        dns). Values outside ``DNS_KINDS``/``DNS_OUTCOMES`` become ``"other"``.

        Args:
            kind: the record type, any case (``"MX"``, ``"A"``, ``"AAAA"``…).
            outcome: one of ``DNS_OUTCOMES``.
            seconds: wall-clock time of the network lookup; ``None`` (or a cache hit) records
                no duration.
        """
        kind = kind.lower()
        kind = kind if kind in DNS_KINDS else "other"
        outcome = outcome if outcome in DNS_OUTCOMES else "other"
        self._labels(self.dns_lookups, kind, outcome).inc()
        if seconds is not None and outcome != "cached":
            self._labels(self.dns_duration, kind).observe(max(seconds, 0.0))

    async def refresh_gauges(self, store: Gauges, now: datetime | None = None) -> None:
        """Read the queue summary, the oldest waiting recipient and the webhook backlog."""
        now = now or datetime.now(UTC)
        summary = await store.queue_summary()
        for status in QUEUE_STATUSES:
            self.queue_recipients.labels(status.value).set(summary.counts.get(status.value, 0))
        oldest = summary.oldest_deferred
        self.queue_oldest_deferred_age.set(
            max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
        )
        waiting = await store.oldest_waiting_recipient()
        self.queue_oldest_age.set(max((now - waiting).total_seconds(), 0.0) if waiting else 0.0)
        # Set afresh each time: a tenant whose quota was removed loses its series.
        uses = await store.quota_use(now)
        self.tenant_quota_used.clear()
        for use in uses:
            self.tenant_quota_used.labels(use.tenant, use.window).set(use.ratio)
        self.tenant_paused.clear()
        for tenant, paused in await store.pause_states():
            self.tenant_paused.labels(tenant).set(1 if paused else 0)
        pending, oldest_pending = await store.webhook_backlog()
        self.webhook_outbox_pending.set(pending)
        self.webhook_outbox_oldest_age.set(
            max((now - oldest_pending).total_seconds(), 0.0) if oldest_pending else 0.0
        )

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format and its content type, for ``GET /metrics``."""
        # The 0.0.4 text format: what every Prometheus 2.x (Debian's) and 3.x scrapes; our
        # names are plain ASCII, so the body is the same in both versions.
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


async def run_gauges(
    store: Gauges,
    metrics: Metrics,
    stopping: asyncio.Event,
    interval: timedelta = timedelta(seconds=15),
) -> None:
    """Refresh the queue gauges every ``interval`` until ``stopping`` is set."""
    seconds = interval.total_seconds()
    while not stopping.is_set():
        try:
            async with asyncio.timeout(seconds * 2):
                await metrics.refresh_gauges(store)
        except (StoreError, TimeoutError) as exc:
            metrics.queue_refresh_errors.inc()
            log_event(log, "metrics.refresh_failed", logging.WARNING, error=str(exc))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stopping.wait()
