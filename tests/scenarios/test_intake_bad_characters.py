"""CR or NUL inside EHLO/HELO/MAIL/RCPT arguments is refused before anything reads it."""

from __future__ import annotations

import pytest

from gateway.core import replies
from tests.scenarios.harness import GatewayHarness

BAD = [b"\r", b"\x00"]


@pytest.mark.parametrize("bad", BAD, ids=["CR", "NUL"])
@pytest.mark.parametrize("verb", [b"EHLO", b"HELO"])
async def test_greeting_argument(harness: GatewayHarness, verb: bytes, bad: bytes) -> None:
    await harness.start()
    async with await harness.raw() as client:
        answer = await client.command(verb + b" client" + bad + b"evil.test")
        assert answer == str(replies.BAD_CHARACTERS)
        # the session has not been greeted: MAIL still needs EHLO
        assert (await client.command("MAIL FROM:<app@sender.example>")).startswith("503")


@pytest.mark.parametrize("bad", BAD, ids=["CR", "NUL"])
async def test_mail_argument(harness: GatewayHarness, bad: bytes) -> None:
    await harness.start()
    async with await harness.raw() as client:
        await client.command("EHLO client.test")
        answer = await client.command(b"MAIL FROM:<app" + bad + b"x@sender.example>")
        assert answer == str(replies.BAD_CHARACTERS)
        # no transaction was started
        assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)


@pytest.mark.parametrize("bad", BAD, ids=["CR", "NUL"])
async def test_rcpt_argument(harness: GatewayHarness, bad: bytes) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start()
    async with await harness.raw() as client:
        await client.command("EHLO client.test")
        await client.command("MAIL FROM:<app@sender.example>")
        answer = await client.command(b"RCPT TO:<bob" + bad + b"x@example.com>")
        assert answer == str(replies.BAD_CHARACTERS)
        assert (await client.command("DATA")).startswith("503 ")
    assert await harness.queued_count() == 0


async def test_overlong_command_line_gets_an_enhanced_code(harness: GatewayHarness) -> None:
    await harness.start()
    async with await harness.raw() as client:
        await client.command("EHLO client.test")
        answer = await client.command(b"MAIL FROM:<" + b"a" * 5000 + b"@sender.example>")
        assert answer == str(replies.LINE_TOO_LONG)
        # the session goes on
        assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
