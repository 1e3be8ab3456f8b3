"""A delay notice (RFC 3464 DSN, ``Action: delayed``) about a delivered message changes
nothing but adds an event; a ``failed`` DSN after it is a later bounce (issue 13, item 1).
The status is read back through the admin API, as support reads it."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core.model import Category, EventType, Status
from tests.scenarios.admin_api import ADMIN, metric, recipient
from tests.scenarios.harness import GatewayHarness, make_dsn

TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}
DELAYED = {
    "status": "4.2.2",
    "action": "delayed",
    "diagnostic": "452 4.2.2 <{rcpt}>: Mailbox full, delivery will be retried",
}


async def test_a_delay_notice_changes_nothing_but_is_recorded(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED, admin=ADMIN)
    return_path = await harness.deliver("hugo@example.com")

    code, _ = await harness.send_bounce(
        return_path, make_dsn(return_path, "hugo@example.com", **DELAYED)
    )

    assert code == 250
    events = await harness.events("hugo@example.com")
    assert [e.type for e in events] == [EventType.QUEUED, EventType.SENT, EventType.REPORT]
    assert events[-1].details.get("action") == "delayed"
    assert events[-1].enhanced == "4.2.2"
    assert await gw.store.find_suppression("default", "hugo@example.com", datetime.now(UTC)) is None
    body = await recipient(harness, "hugo@example.com")
    assert (body["status"], body["suppression"]) == (Status.SENT.value, None)
    assert body["recipient"]["status"] == Status.SENT.value
    assert body["recipient"]["category"] == Category.DELIVERED.value  # untouched
    assert body["events"][0]["type"] == "report"
    assert await metric(harness, "gateway_bounces_total", tenant="default") == 0


async def test_a_failed_dsn_after_the_delay_is_a_later_bounce(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN)
    return_path = await harness.deliver("ines@example.com")
    delay = make_dsn(return_path, "ines@example.com", **DELAYED)
    assert (await harness.send_bounce(return_path, delay))[0] == 250

    failed = make_dsn(
        return_path,
        "ines@example.com",
        status="5.2.2",
        diagnostic="552 5.2.2 <{rcpt}>: Mailbox full, giving up",
    )
    assert (await harness.send_bounce(return_path, failed))[0] == 250

    body = await recipient(harness, "ines@example.com")
    assert body["recipient"]["status"] == Status.BOUNCED.value
    assert body["recipient"]["category"] == Category.MAILBOX_FULL.value
    assert [e["type"] for e in body["events"]][:2] == ["report", "report"]
    assert (
        await metric(
            harness,
            "gateway_bounces_total",
            tenant="default",
            category="mailbox_full",
            kind="async",
        )
        == 1
    )
