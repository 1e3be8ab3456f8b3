"""Three mailbox-full DSNs for three messages in a row suppress the address for a limited
time (repeated_failures, policy.mailbox_full_suppression = 7 days); two do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.model import Category, EventType, Status, SuppressionReason
from tests.scenarios.harness import GatewayHarness, make_dsn

TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}
ADDRESS = "gina@example.com"


async def test_three_mailbox_full_reports_suppress_for_seven_days(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)

    for n in range(3):
        assert await gw.store.find_suppression("default", ADDRESS, datetime.now(UTC)) is None
        return_path = await harness.deliver(ADDRESS)
        body = make_dsn(return_path, ADDRESS, status="5.2.2", diagnostic="552 5.2.2 Mailbox full")
        code, _ = await harness.send_bounce(return_path, body)
        assert code == 250, n
    suppression = await gw.store.find_suppression("default", ADDRESS, datetime.now(UTC))

    assert suppression is not None
    assert suppression.reason is SuppressionReason.REPEATED_FAILURES
    assert suppression.expires_at is not None
    expected = datetime.now(UTC) + timedelta(days=7)
    assert abs(suppression.expires_at - expected) < timedelta(seconds=30)
    rows = await harness.recipients(ADDRESS)
    assert len(rows) == 3
    assert all(r.status is Status.BOUNCED for r in rows)
    assert all(r.category is Category.MAILBOX_FULL for r in rows)
    reports = [e for e in await harness.events(ADDRESS) if e.type is EventType.REPORT]
    assert len(reports) == 3
    assert suppression.event_id == reports[-1].event_id


async def test_a_tenant_override_of_the_threshold_applies(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)
    await gw.store.update_tenant_settings("default", {"failure_threshold": 1})  # type: ignore[attr-defined]
    gw.tenants.invalidate()  # as the admin API does after its own write

    return_path = await harness.deliver(ADDRESS)
    body = make_dsn(return_path, ADDRESS, status="5.2.2", diagnostic="552 5.2.2 Mailbox full")
    code, _ = await harness.send_bounce(return_path, body)
    assert code == 250

    suppression = await gw.store.find_suppression("default", ADDRESS, datetime.now(UTC))
    assert suppression is not None  # one failure was enough for this tenant
    assert suppression.reason is SuppressionReason.REPEATED_FAILURES
