"""The clock jumps forward by ten days (past ``relay.max_queue_lifetime``, five days) while
mail waits that was never attempted: nothing expires en masse. Mail the destination takes
is delivered; mail it defers is deferred and retried, not expired at its first attempt.

The queue lifetime counts from when the message was accepted; a recipient whose first
attempt comes after that deadline (a forward clock jump, or a gateway that was down that
long) has had no chance yet, so its lifetime counts from that first attempt instead
(``core.lifecycle``).
"""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import EventType, Status
from tests.scenarios.harness import GatewayHarness, OffsetClock
from tests.waiting import wait_until

DEFERRING = [f"tempfail-{n}@example.com" for n in range(5)]
TAKEN = [f"taken-{n}@example.com" for n in range(5)]


async def test_clock_jump_of_ten_days_expires_nothing_never_attempted(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    clock = OffsetClock()
    # Intake only: the messages are queued and never attempted before the jump.
    await harness.start(clock, serve_only=True, relay={"retry_intervals": ["1s"]})
    for address in DEFERRING + TAKEN:
        assert await harness.send([address]) == {}

    clock.jump(timedelta(days=10))
    harness.run()

    await mx.wait_for(len(TAKEN), timeout=10)
    for address in TAKEN:
        await harness.wait_status(address, Status.SENT, timeout=10)
    for address in DEFERRING:

        async def tried_twice(address: str = address) -> bool:
            (row,) = await harness.recipients(address)
            assert row.status in (Status.QUEUED, Status.DEFERRED), row
            return row.attempts >= 2

        await wait_until(tried_twice, 10, what=f"{address} tried twice")
    for address in DEFERRING + TAKEN:
        assert EventType.EXPIRED not in [e.type for e in await harness.events(address)]
    assert len(mx.messages) == len(TAKEN)
