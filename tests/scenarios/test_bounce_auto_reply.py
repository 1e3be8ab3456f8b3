"""An out-of-office auto-reply to the return path is recorded and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core.model import Category, EventType, Status
from tests.scenarios.harness import GatewayHarness, make_auto_reply

TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}


async def test_out_of_office_is_recorded_without_suppression(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)
    return_path = await harness.deliver("frank@example.com")

    body = make_auto_reply(return_path, "frank@example.com")
    code, _ = await harness.send_bounce(return_path, body, sender="frank@example.com")

    assert code == 250
    events = await harness.events("frank@example.com")
    assert [e.type for e in events] == [EventType.QUEUED, EventType.SENT, EventType.REPORT]
    assert events[-1].category is Category.AUTO_REPLY
    (row,) = await harness.recipients("frank@example.com")
    assert row.status is Status.SENT
    assert (
        await gw.store.find_suppression("default", "frank@example.com", datetime.now(UTC)) is None
    )
