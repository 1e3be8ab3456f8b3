"""A 452 for one recipient at RCPT defers that recipient alone; the others of the same
message are delivered in the same transaction, and the deferred one is retried later."""

from __future__ import annotations

from gateway.core.model import Category, EventType, Status
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until


async def test_452_defers_one_recipient_and_delivers_the_others(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(relay={"retry_intervals": ["1s"]})
    rcpts = ["mia@example.com", "full-nina@example.com", "toomany-omar@example.com"]

    assert await harness.send([*rcpts, "paul@example.com"]) == {}

    (received,) = await mx.wait_for(1, timeout=10)
    assert set(received.rcpt_tos) == {"mia@example.com", "paul@example.com"}
    await harness.wait_status("mia@example.com", Status.SENT)
    await harness.wait_status("paul@example.com", Status.SENT)
    full = await harness.wait_status("full-nina@example.com", Status.DEFERRED)
    assert full.last_reply.startswith("452 4.2.2")
    assert full.category is Category.MAILBOX_FULL
    toomany = await harness.wait_status("toomany-omar@example.com", Status.DEFERRED)
    assert toomany.last_reply.startswith("452 4.5.3")
    # Same message, one transaction: all four were offered in one MAIL FROM.
    assert len(mx.commands("MAIL")) == 1
    assert len(mx.commands("RCPT")) == 4

    # Retried later, alone (the delivered recipients are not sent again).
    async def deferred_twice() -> bool:
        events = await harness.events("full-nina@example.com")
        return [e.type for e in events].count(EventType.DEFERRED) >= 2

    await wait_until(deferred_twice, 5, what="deferred twice")
    assert mx.commands("RCPT").count("full-nina@example.com") >= 2
    assert len(mx.messages) == 1
    assert mx.commands("RCPT").count("mia@example.com") == 1
    assert mx.commands("RCPT").count("paul@example.com") == 1
