"""Shutdown (SIGTERM's path: ``gw.shutdown()``) while a delivery is in flight loses nothing:
the recipient is either sent before the gateway stops, or returned to the queue and sent
once after a restart on the same store."""

from __future__ import annotations

import asyncio

from gateway.core.model import EventType, Status
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until

ADDRESS = "slow-uma@example.com"


async def _shutdown_while_in_flight(harness: GatewayHarness) -> None:
    gw = harness.gw
    assert gw is not None
    mx = harness.mxs[0]
    # the RCPT reply is being held back
    await wait_until(lambda: ADDRESS in mx.commands("RCPT"), 5, what="the RCPT in flight")
    assert gw.relay.in_flight == 1
    await harness.stop()


async def test_shutdown_past_the_grace_returns_the_recipient_to_the_queue(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com", slow_delay=2.0)
    await harness.start(relay={"shutdown_grace": "0.3s"})
    assert await harness.send([ADDRESS]) == {}

    await _shutdown_while_in_flight(harness)

    assert mx.messages == []  # cut off before DATA
    # Restart on the same store: the lease of the stopped node was released.
    await harness.start(relay={"shutdown_grace": "3s"})
    (received,) = await mx.wait_for(1, timeout=8)
    assert received.rcpt_tos == (ADDRESS,)
    row = await harness.wait_status(ADDRESS, Status.SENT)
    assert row.attempts == 1  # the interrupted attempt recorded nothing
    await asyncio.sleep(0.5)
    assert len(mx.messages) == 1
    types = [e.type for e in await harness.events(ADDRESS)]
    assert types == [EventType.QUEUED, EventType.SENT]


async def test_shutdown_within_the_grace_finishes_the_delivery(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com", slow_delay=0.5)
    await harness.start(relay={"shutdown_grace": "4s"})
    assert await harness.send([ADDRESS]) == {}

    await _shutdown_while_in_flight(harness)

    assert len(mx.messages) == 1  # finished during the grace period
    await harness.start()
    row = await harness.wait_status(ADDRESS, Status.SENT)
    assert row.attempts == 1
    await asyncio.sleep(1.0)
    assert len(mx.messages) == 1  # not sent again after the restart
