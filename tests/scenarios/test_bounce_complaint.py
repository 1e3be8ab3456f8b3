"""An ARF report (RFC 5965) to the return path of a delivered message: the recipient stays
``sent`` and gets a complaint event; an ``abuse`` report suppresses the address as a
complaint, an ``auth-failure`` report (RFC 6591) alerts the operator and changes nothing
else, a ``not-spam`` report (RFC 6430) is only recorded (issue 13, item 1). The status is
read back through the admin API, as support reads it."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core.model import Category, EventType, Status, SuppressionReason
from tests.scenarios.admin_api import ADMIN, metric, recipient
from tests.scenarios.harness import GatewayHarness, make_arf

TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}


async def test_abuse_report_suppresses_with_reason_complaint(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED, admin=ADMIN)
    return_path = await harness.deliver("dave@example.com")

    code, _ = await harness.send_bounce(return_path, make_arf(return_path, "dave@example.com"))

    assert code == 250
    reports = [e for e in await harness.events("dave@example.com") if e.type is EventType.REPORT]
    assert len(reports) == 1
    assert reports[0].category is Category.COMPLAINT
    assert reports[0].details.get("feedback_type") == "abuse"
    suppression = await gw.store.find_suppression("default", "dave@example.com", datetime.now(UTC))
    assert suppression is not None
    assert suppression.reason is SuppressionReason.COMPLAINT
    assert suppression.expires_at is None
    assert suppression.event_id == reports[0].event_id
    # Delivered, then complained about: the recipient stays sent, marked with the complaint.
    body = await recipient(harness, "dave@example.com")
    assert body["recipient"]["status"] == Status.SENT.value
    assert body["recipient"]["category"] == Category.COMPLAINT.value
    assert (body["status"], body["reason"]) == ("suppressed", SuppressionReason.COMPLAINT.value)
    assert [e["type"] for e in body["events"]][:2] == ["suppressed", "report"]
    assert body["events"][1]["category"] == Category.COMPLAINT.value
    # Not a bounce.
    assert await metric(harness, "gateway_bounces_total", tenant="default") == 0
    assert await metric(harness, "gateway_complaints_total", feedback_type="abuse") == 1


async def test_auth_failure_report_does_not_suppress(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED, admin=ADMIN)
    return_path = await harness.deliver("erin@example.com")

    body = make_arf(return_path, "erin@example.com", feedback_type="auth-failure")
    code, _ = await harness.send_bounce(return_path, body)

    assert code == 250
    reports = [e for e in await harness.events("erin@example.com") if e.type is EventType.REPORT]
    assert len(reports) == 1
    assert reports[0].details.get("feedback_type") == "auth-failure"
    assert await gw.store.find_suppression("default", "erin@example.com", datetime.now(UTC)) is None
    # About our SPF/DKIM/DMARC, not the recipient: it stays as it was, and the operator is
    # alerted through the sender-configuration counter.
    report = await recipient(harness, "erin@example.com")
    assert (report["status"], report["suppression"]) == (Status.SENT.value, None)
    assert report["recipient"]["status"] == Status.SENT.value
    assert report["recipient"]["category"] == Category.DELIVERED.value
    assert await metric(harness, "gateway_sender_config_failures_total", tenant="default") == 1
    assert await metric(harness, "gateway_bounces_total", tenant="default") == 0


async def test_not_spam_report_is_recorded_and_changes_nothing(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED, admin=ADMIN)
    return_path = await harness.deliver("fred@example.com")

    body = make_arf(return_path, "fred@example.com", feedback_type="not-spam")
    code, _ = await harness.send_bounce(return_path, body)

    assert code == 250
    reports = [e for e in await harness.events("fred@example.com") if e.type is EventType.REPORT]
    assert len(reports) == 1
    assert reports[0].details.get("feedback_type") == "not-spam"
    assert await gw.store.find_suppression("default", "fred@example.com", datetime.now(UTC)) is None
    report = await recipient(harness, "fred@example.com")
    assert (report["status"], report["suppression"]) == (Status.SENT.value, None)
    assert report["recipient"]["status"] == Status.SENT.value
    assert report["recipient"]["category"] == Category.DELIVERED.value
    assert report["events"][0]["type"] == "report"
    assert await metric(harness, "gateway_sender_config_failures_total", tenant="default") == 0
