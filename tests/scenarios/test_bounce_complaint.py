"""An ARF abuse report (RFC 5965) to the return path suppresses the address as a complaint,
even though the message was delivered."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core.model import Category, EventType, SuppressionReason
from tests.scenarios.harness import GatewayHarness, make_arf

TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}


async def test_abuse_report_suppresses_with_reason_complaint(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)
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


async def test_auth_failure_report_does_not_suppress(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)
    return_path = await harness.deliver("erin@example.com")

    body = make_arf(return_path, "erin@example.com", feedback_type="auth-failure")
    code, _ = await harness.send_bounce(return_path, body)

    assert code == 250
    reports = [e for e in await harness.events("erin@example.com") if e.type is EventType.REPORT]
    assert len(reports) == 1
    assert await gw.store.find_suppression("default", "erin@example.com", datetime.now(UTC)) is None
