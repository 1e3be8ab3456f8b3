"""Trusted-network relay: accepted, queued durably, delivered to the MX at once."""

from __future__ import annotations

from gateway.core.model import EventType, Status
from tests.scenarios.harness import GatewayHarness


async def test_trusted_client_message_is_delivered_to_the_mx(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start()

    refused = await harness.send(["alice@example.com"])

    assert refused == {}
    (received,) = await mx.wait_for(1, timeout=10)
    assert received.rcpt_tos == ("alice@example.com",)
    assert received.mail_from.startswith("b+")
    assert received.mail_from.endswith("@bounces.gateway.test")
    assert b"\r\nHello.\r\n" in received.content
    assert received.content.startswith(b"Received: from client.test")
    row = await harness.wait_status("alice@example.com", Status.SENT)
    assert row.subject == "Invoice 42"
    types = [e.type for e in await harness.events("alice@example.com")]
    assert types == [EventType.QUEUED, EventType.SENT]
