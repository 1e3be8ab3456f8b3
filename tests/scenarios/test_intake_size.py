"""Messages over smtp.max_message_size are refused with 552 5.3.4 and never queued."""

from __future__ import annotations

import asyncio

from gateway.core import replies
from tests.scenarios.harness import GatewayHarness

LIMIT = 10_000


async def test_data_over_the_limit_is_refused(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp={"max_message_size": LIMIT})
    body = b"From: App <app@sender.example>\r\nSubject: big\r\n\r\n" + b"x" * 998 + b"\r\n"
    async with await harness.raw() as client:
        await client.command("EHLO client.test")
        assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
        assert await client.command("RCPT TO:<bob@example.com>") == str(replies.RECIPIENT_OK)
        assert (await client.command("DATA")).startswith("354")
        await client.send(body * (LIMIT // len(body) + 2) + b".\r\n")
        assert await client.reply() == str(replies.MESSAGE_TOO_BIG)
        # the session goes on: a message within the limit is still accepted afterwards
        assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)

    assert await harness.queued_count() == 0
    await asyncio.sleep(0.3)
    assert mx.messages == []


async def test_declared_size_over_the_limit_is_refused_at_mail(harness: GatewayHarness) -> None:
    await harness.start(smtp={"max_message_size": LIMIT})
    async with await harness.raw() as client:
        await client.command("EHLO client.test")
        answer = await client.command(f"MAIL FROM:<app@sender.example> SIZE={LIMIT + 1}")
    assert answer == str(replies.MESSAGE_TOO_BIG)
    assert await harness.queued_count() == 0
