"""SMTP smuggling: only CRLF.CRLF ends DATA; other dot lines stay inside the content."""

from __future__ import annotations

import asyncio
import re

import pytest

from gateway.core import replies
from gateway.core.model import Status
from tests.scenarios.harness import GatewayHarness

ENDINGS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\n.\r"]
SMUGGLED = (
    b"MAIL FROM:<ceo@sender.example>\r\n"
    b"RCPT TO:<victim@example.com>\r\n"
    b"DATA\r\n"
    b"From: CEO <ceo@sender.example>\r\nSubject: smuggled\r\n\r\nPay this invoice.\r\n"
)


def unstuffed(data: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency: a CRLF-terminated line's leading dot is removed."""
    lines = data.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


@pytest.mark.parametrize("ending", ENDINGS, ids=[repr(e)[2:-1] for e in ENDINGS])
async def test_smuggled_transaction_stays_in_the_content(
    harness: GatewayHarness, ending: bytes
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start()
    content = b"From: App <app@sender.example>\r\nSubject: real\r\n\r\nHello." + ending + SMUGGLED
    async with await harness.raw() as client:
        await client.command("EHLO client.test")
        assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
        assert await client.command("RCPT TO:<bob@example.com>") == str(replies.RECIPIENT_OK)
        assert (await client.command("DATA")).startswith("354")
        await client.send(content + b"\r\n.\r\n")
        answer = await client.reply()
        assert answer.startswith(f"{replies.QUEUED} ")
        # nothing else was answered: the next reply is the one to our NOOP
        assert (await client.command("NOOP")).startswith("250")
        assert (await client.command("QUIT")).startswith("221")

    queue_id = answer.rsplit(" ", 1)[1]
    assert harness.gw is not None
    stored = await harness.gw.store.load_content(queue_id)
    assert stored is not None
    expected = unstuffed(content) + b"\r\n"
    assert stored.endswith(expected)  # the content as received, one message
    (received,) = await mx.wait_for(1, timeout=10)
    assert received.rcpt_tos == ("bob@example.com",)
    # the relay sends CRLF line endings (RFC 5321 §2.3.8); the smuggled lines are content
    assert received.content.endswith(re.sub(rb"\r\n|\n|\r", b"\r\n", expected))
    await harness.wait_status("bob@example.com", Status.SENT)
    await asyncio.sleep(0.3)  # a smuggled second message would be delivered by now
    assert len(mx.messages) == 1
    assert mx.commands("RCPT") == ["bob@example.com"]
    assert await harness.queued_count() == 1
    assert await harness.events("victim@example.com") == []
