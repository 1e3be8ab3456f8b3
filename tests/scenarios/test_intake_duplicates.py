"""The same Message-ID to the same recipient within the window is accepted but sent once."""

from __future__ import annotations

import asyncio

from gateway.core.model import EventType, Status
from tests.scenarios.harness import GatewayHarness


async def test_retried_message_is_delivered_once(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp={"duplicate_window": "1h"})
    header = "Message-ID: <invoice-42@sender.example>\r\n"

    assert await harness.send(["bob@example.com"], headers=header) == {}
    await mx.wait_for(1, timeout=10)
    await harness.wait_status("bob@example.com", Status.SENT)
    assert await harness.send(["bob@example.com"], headers=header) == {}  # 250 again

    await asyncio.sleep(0.5)  # a second delivery would have happened by now
    assert len(mx.messages) == 1
    types = [e.type for e in await harness.events("bob@example.com")]
    assert types == [EventType.QUEUED, EventType.SENT, EventType.DUPLICATE]
    assert await harness.queued_count() == 1


async def test_another_recipient_with_the_same_message_id_is_sent(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp={"duplicate_window": "1h"})
    header = "Message-ID: <invoice-42@sender.example>\r\n"

    assert await harness.send(["bob@example.com"], headers=header) == {}
    assert await harness.send(["carol@example.com"], headers=header) == {}
    await mx.wait_for(2, timeout=10)
    assert sorted(m.rcpt_tos for m in mx.messages) == [
        ("bob@example.com",),
        ("carol@example.com",),
    ]
