"""A temporary failure defers the recipient with the reply recorded; the retry delivers it."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import EventType, Status
from tests.scenarios.harness import GatewayHarness


async def test_4xx_defers_then_the_retry_delivers(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    mx.mode = "greeting421"  # "421 4.3.2 ... busy, try later"
    await harness.start(relay={"retry_intervals": ["1s"]})

    assert await harness.send(["kate@example.com"]) == {}

    row = await harness.wait_status("kate@example.com", Status.DEFERRED)
    assert row.attempts == 1
    assert row.last_reply.startswith("421 4.3.2")
    assert "busy" in row.last_reply
    assert row.due_at is not None
    deferred = [e for e in await harness.events("kate@example.com") if e.type is EventType.DEFERRED]
    assert deferred[0].reply_code == 421
    assert deferred[0].enhanced == "4.3.2"
    assert mx.messages == []

    mx.mode = "normal"
    (received,) = await mx.wait_for(1, timeout=10)
    assert received.rcpt_tos == ("kate@example.com",)
    row = await harness.wait_status("kate@example.com", Status.SENT)
    assert row.attempts == 2
    assert row.due_at is None
    events = await harness.events("kate@example.com")
    assert [e.type for e in events] == [EventType.QUEUED, EventType.DEFERRED, EventType.SENT]
    # The retry follows relay.retry_intervals (1s), not some coarser polling period.
    assert events[2].at - events[1].at < timedelta(seconds=3)


async def test_destination_down_then_up(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    mx.set_down()
    await harness.start(relay={"retry_intervals": ["1s"]})

    assert await harness.send(["liam@example.com"]) == {}

    row = await harness.wait_status("liam@example.com", Status.DEFERRED)
    assert row.last_reply.startswith("451 4.4.1")
    mx.set_down(False)
    await mx.wait_for(1, timeout=10)
    row = await harness.wait_status("liam@example.com", Status.SENT)
    assert row.attempts == 2
    assert len(mx.messages) == 1
