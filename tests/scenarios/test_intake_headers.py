"""Headers at intake: Message-ID/Date added when missing, content kept, From: checked."""

from __future__ import annotations

import asyncio

from gateway.core import replies
from gateway.core.model import Tenant
from tests.scenarios.harness import HOSTNAME, GatewayHarness, RawClient

ORIGINAL = (
    b"From: App <app@sender.example>\r\n"
    b"To: bob@example.com\r\n"
    b"Subject: =?utf-8?q?Fatura_n=C2=BA_42?=\r\n"
    b"X-Trailing-Space: kept   \r\n"
    b"\r\n"
    b"Ol\xc3\xa1,  two spaces\tand a tab.\r\n"
    b"..a dot-stuffed line\r\n"
    b"\r\n"
)


async def transaction(client: RawClient, content: bytes, sender: str = "app@sender.example") -> str:
    await client.command("EHLO client.test")
    answer = await client.command(f"MAIL FROM:<{sender}> BODY=8BITMIME")
    if not answer.startswith("250"):
        return answer
    assert await client.command("RCPT TO:<bob@example.com>") == str(replies.RECIPIENT_OK)
    assert (await client.command("DATA")).startswith("354")
    await client.send(content + b".\r\n")
    return await client.reply()


async def test_missing_message_id_and_date_are_prepended(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    async with await harness.raw() as client:
        answer = await transaction(client, ORIGINAL)
    assert answer.startswith(f"{replies.QUEUED} ")
    queue_id = answer.rsplit(" ", 1)[1]

    stored = await gw.store.load_content(queue_id)
    assert stored is not None
    original = ORIGINAL.replace(b"\r\n..a dot", b"\r\n.a dot")  # SMTP transparency undone
    assert stored.endswith(original)
    prefix = stored[: -len(original)]
    lines = prefix.decode().split("\r\n")
    assert lines[-1] == ""
    fields = [line.split(":", 1)[0] for line in lines[:-1] if not line.startswith("\t")]
    assert fields == ["Received", "Message-ID", "Date"]
    assert f"Message-ID: <{queue_id}@{HOSTNAME}>" in lines
    (received,) = await mx.wait_for(1, timeout=10)
    assert received.content.endswith(original)
    assert f"<{queue_id}@{HOSTNAME}>".encode() in received.content


async def test_existing_message_id_and_date_are_kept(harness: GatewayHarness) -> None:
    gw = await harness.start()
    harness.mx("127.0.0.2", "example.com")
    content = b"Message-ID: <own@sender.example>\r\nDate: Tue, 5 Mar 2024 12:00:00 +0000\r\n"
    content += ORIGINAL
    async with await harness.raw() as client:
        answer = await transaction(client, content)
    queue_id = answer.rsplit(" ", 1)[1]
    stored = await gw.store.load_content(queue_id)
    assert stored is not None
    prefix = stored[: stored.index(content.replace(b"\r\n..a", b"\r\n.a"))]
    assert prefix.startswith(b"Received: ")
    assert b"Message-ID:" not in prefix
    assert b"Date:" not in prefix


async def test_missing_from_header_is_refused(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start()
    content = ORIGINAL.replace(b"From: App <app@sender.example>\r\n", b"")
    async with await harness.raw() as client:
        assert await transaction(client, content) == str(replies.FROM_SYNTAX)
    assert await harness.queued_count() == 0


async def test_foreign_from_domain_is_refused_for_a_restricted_tenant(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    restricted = Tenant("default", allowed_sender_domains=("sender.example",))
    await gw.store.update_tenant(restricted)  # type: ignore[attr-defined]
    gw.tenants.invalidate()

    foreign = ORIGINAL.replace(b"app@sender.example", b"ceo@bank.example")
    async with await harness.raw() as client:
        assert await transaction(client, foreign) == str(replies.FROM_DOMAIN_NOT_ALLOWED)
    async with await harness.raw() as client:
        answer = await transaction(client, ORIGINAL, sender="ceo@bank.example")
        assert answer == str(replies.SENDER_DOMAIN_NOT_ALLOWED)
    assert await harness.queued_count() == 0

    async with await harness.raw() as client:  # the allowed domain still goes through
        assert (await transaction(client, ORIGINAL)).startswith(f"{replies.QUEUED} ")
    await mx.wait_for(1, timeout=10)
    await asyncio.sleep(0.2)
    assert len(mx.messages) == 1


async def test_a_second_from_header_cannot_slip_past_the_domain_check(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    restricted = Tenant("default", allowed_sender_domains=("sender.example",))
    await gw.store.update_tenant(restricted)  # type: ignore[attr-defined]
    gw.tenants.invalidate()

    for extra in (b"From: CEO <ceo@bank.example>\r\n", b"From : CEO <ceo@bank.example>\r\n"):
        async with await harness.raw() as client:
            assert await transaction(client, extra + ORIGINAL) == str(replies.FROM_SYNTAX)
    assert await harness.queued_count() == 0
