"""A destination that keeps deferring: past relay.max_queue_lifetime the recipient expires
as receiving_problem."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import Category, EventType, Status
from tests.scenarios.harness import GatewayHarness


async def test_keeps_deferring_until_the_queue_lifetime_expires(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    mx.set_down()
    await harness.start(relay={"retry_intervals": ["1s"], "max_queue_lifetime": "2s"})

    assert await harness.send(["quinn@example.com"]) == {}

    row = await harness.wait_status("quinn@example.com", Status.EXPIRED, timeout=8)
    assert row.category is Category.RECEIVING_PROBLEM
    assert row.due_at is None
    assert row.attempts >= 2
    events = await harness.events("quinn@example.com")
    types = [e.type for e in events]
    assert types[0] is EventType.QUEUED
    assert EventType.DEFERRED in types
    assert types[-1] is EventType.EXPIRED
    assert types.count(EventType.EXPIRED) == 1
    expired = next(e for e in events if e.type is EventType.EXPIRED)
    assert expired.category is Category.RECEIVING_PROBLEM
    assert expired.at - events[0].at >= timedelta(seconds=2)
    assert mx.messages == []
