"""An untrusted, unauthenticated client cannot relay to outside domains."""

from __future__ import annotations

import asyncio

from gateway.core import replies
from tests.scenarios.harness import GatewayHarness


async def test_unauthenticated_untrusted_client_cannot_relay(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp={"trusted_networks": ["127.0.0.250/32"]})

    async with await harness.raw() as client:
        assert (await client.command("EHLO client.test")).startswith("250")
        assert await client.command("MAIL FROM:<spammer@sender.example>") == str(replies.SENDER_OK)
        assert await client.command("RCPT TO:<victim@example.com>") == str(replies.AUTH_REQUIRED)
        assert (await client.command("DATA")).startswith("503 ")

    assert await harness.queued_count() == 0
    assert await harness.events("victim@example.com") == []
    await asyncio.sleep(0.3)  # give a wrongly queued message time to reach the MX
    assert mx.messages == []
    assert mx.connections == 0


async def test_an_unexpected_error_in_a_hook_is_a_temporary_refusal(
    harness: GatewayHarness,
) -> None:
    from gateway.core import replies

    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()

    async def broken(*_args: object) -> None:
        raise ValueError("boom")

    gw.handler.checker.check = broken  # type: ignore[method-assign]
    async with await harness.raw() as client:
        await client.command("EHLO client.test")
        await client.command("MAIL FROM:<app@sender.example>")
        answer = await client.command("RCPT TO:<ana@example.com>")
    assert answer == str(replies.STORE_FAILED.with_text("Temporary server error; please try again"))
    assert "boom" not in answer
