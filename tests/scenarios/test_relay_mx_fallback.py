"""Two MX records, the preferred one unusable: the message goes to the second."""

from __future__ import annotations

from gateway.core.model import EventType, Status
from tests.scenarios.harness import GatewayHarness


async def test_preferred_mx_down_delivers_via_the_second(harness: GatewayHarness) -> None:
    primary = harness.mx("127.0.0.2", "example.com", pref=10)
    backup = harness.mx("127.0.0.3", "example.com", pref=20)
    primary.set_down()
    await harness.start()

    assert await harness.send(["ivy@example.com"]) == {}

    (received,) = await backup.wait_for(1, timeout=10)
    assert received.rcpt_tos == ("ivy@example.com",)
    row = await harness.wait_status("ivy@example.com", Status.SENT)
    assert row.attempts == 1
    assert primary.messages == []
    sent = [e for e in await harness.events("ivy@example.com") if e.type is EventType.SENT]
    assert len(sent) == 1
    assert sent[0].remote_host in ("mx-127-0-0-3.test", "127.0.0.3")


async def test_preferred_mx_refusing_service_is_tried_first_then_the_second(
    harness: GatewayHarness,
) -> None:
    primary = harness.mx("127.0.0.2", "example.com", pref=10)
    backup = harness.mx("127.0.0.3", "example.com", pref=20)
    primary.mode = "greeting421"
    await harness.start()

    assert await harness.send(["jack@example.com"]) == {}

    (received,) = await backup.wait_for(1, timeout=10)
    assert received.rcpt_tos == ("jack@example.com",)
    await harness.wait_status("jack@example.com", Status.SENT)
    assert primary.connections >= 1  # preference order: the lower value was tried first
    assert primary.messages == []
