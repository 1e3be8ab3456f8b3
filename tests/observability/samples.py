"""Builders shared by the observability tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.model import (
    Category,
    Event,
    EventType,
    NewMessage,
    Reason,
    Status,
    Suppression,
    SuppressionReason,
)
from gateway.core.ports import Outcome, QueueSummary
from gateway.core.shaping import Change, ChangeKind, SiteView
from gateway.observe.events import (
    MessageAccepted,
    RecipientChanged,
    SuppressionAdded,
    SuppressionRemoved,
)
from gateway.observe.metrics import (
    FEEDBACK_RESULTS,
    QUEUE_STATUSES,
    WEBHOOK_RESULTS,
    Metrics,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# The reason the relay stores with an attempt's event (``core.lifecycle.effect``).
_REASONS = {
    EventType.SENT: Reason.ACCEPTED,
    EventType.DEFERRED: Reason.TRANSIENT_FAILURE,
    EventType.BOUNCED: Reason.PERMANENT_FAILURE,
    EventType.EXPIRED: Reason.QUEUE_LIFETIME_EXCEEDED,
}
TENANT = "acme"


def message(queue_id: str, *recipients: str, at: datetime = T0) -> NewMessage:
    return NewMessage(
        queue_id=queue_id,
        tenant=TENANT,
        mail_from="billing@acme.example",
        recipients=recipients,
        content=b"Subject: invoice\r\n\r\nhello\r\n",
        message_id=f"<{queue_id}@acme.example>",
        subject="invoice",
        received_at=at,
    )


def outcome(
    recipient_id: int,
    address: str,
    kind: EventType,
    at: datetime,
    *,
    host: str = "gmail-smtp-in.l.google.com",
    category: Category | None = None,
    code: int = 250,
    enhanced: str = "2.0.0",
    queue_id: str = "q1",
) -> Outcome:
    status = {
        EventType.SENT: Status.SENT,
        EventType.BOUNCED: Status.BOUNCED,
        EventType.DEFERRED: Status.DEFERRED,
        EventType.EXPIRED: Status.EXPIRED,
    }[kind]
    event = Event(
        recipient_id,
        TENANT,
        address,
        kind,
        at,
        queue_id=queue_id,
        category=category,
        reply_code=code,
        enhanced=enhanced,
        text="remote says so",
        remote_host=host,
        reason=_REASONS.get(kind, Reason.LEGACY_UNKNOWN),
    )
    due = at + timedelta(minutes=5) if kind is EventType.DEFERRED else None
    return Outcome(recipient_id, status, event, due, category)


def exercise(metrics: Metrics) -> None:
    """Give every metric at least one sample (for the dashboard/alert name checks)."""
    metrics.publish(MessageAccepted(TENANT, "q1", 2, 1, T0))
    for kind, category, host in [
        (EventType.SENT, None, "gmail-smtp-in.l.google.com"),
        (EventType.BOUNCED, Category.SPAM_BLOCKED, "mx.uol.com.br"),
        (EventType.DEFERRED, Category.SENDER_CONFIG, "mx1.hotmail.com"),
        (EventType.EXPIRED, Category.RECEIVING_PROBLEM, ""),
    ]:
        metrics.publish(
            RecipientChanged(
                Event(1, TENANT, "a@b.example", kind, T0 + timedelta(minutes=1),
                      category=category, remote_host=host),
                None,
                T0,
                first_attempt=True,
            )
        )  # fmt: skip
    metrics.publish(
        RecipientChanged(
            Event(None, TENANT, "x@y.example", EventType.REJECTED, T0, enhanced="5.1.1")
        )
    )
    metrics.publish(
        RecipientChanged(
            Event(1, TENANT, "a@b.example", EventType.REPORT, T0, category=Category.COMPLAINT,
                  details={"feedback_type": "abuse"}),
        )
    )  # fmt: skip
    metrics.publish(
        RecipientChanged(
            Event(1, TENANT, "a@b.example", EventType.REPORT, T0,
                  category=Category.NONEXISTENT_ADDRESS),
        )
    )  # fmt: skip
    metrics.publish(
        SuppressionAdded(Suppression(TENANT, "a@b.example", SuppressionReason.COMPLAINT, T0))
    )
    metrics.publish(SuppressionRemoved(None, "a@b.example", 1, T0))
    for result in WEBHOOK_RESULTS:
        metrics.webhook_result(TENANT, result)
    metrics.sink_failed("WebhookOutbox")
    metrics.queue_refresh_errors.inc()
    for status in QUEUE_STATUSES:
        metrics.queue_recipients.labels(status.value).set(1)
    metrics.queue_oldest_deferred_age.set(60)
    metrics.queue_oldest_age.set(90)
    metrics.track_smtp_sessions(lambda: 3)
    metrics.site_changed("gmail", Change(ChangeKind.THROTTLED, "421 4.7.0 Too many connections"))
    view = SiteView("mx.example", "other", "suspended", T0, T0, 4, 0, 10, False, "refused")
    metrics.track_sites(lambda: [view])
    metrics.observe_dns("MX", "answer", 0.004)
    metrics.observe_dns("A", "cached")
    metrics.webhook_outbox_pending.set(1)
    metrics.webhook_outbox_oldest_age.set(1)
    for result in FEEDBACK_RESULTS:
        metrics.feedback_report(result)
    metrics.tenant_quota_used.labels(TENANT, "hourly").set(0.5)
    metrics.tenant_paused.labels(TENANT).set(1)  # issue 15


EMPTY_SUMMARY = QueueSummary()
