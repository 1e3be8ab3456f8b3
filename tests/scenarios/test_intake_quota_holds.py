"""Quotas are held at RCPT: recipients of the same transaction and of concurrent sessions count.

The quota is set through the admin API over HTTP (the node's own write reaches its intake at
once). Before holds, each RCPT counted only committed ``queued`` events, so a tenant with one
recipient left could still queue ``smtp.max_recipients`` per message, per session. Every
transaction that ends without queuing its message gives its holds back: ``RSET``, ``QUIT``,
hanging up, a ``DATA`` refused after the final dot, a new ``MAIL`` after ``EHLO``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.core import replies
from gateway.core.model import EventType
from tests.scenarios.admin_api import ADMIN, admin
from tests.scenarios.harness import GatewayHarness, RawClient
from tests.waiting import wait_until

CONTENT = b"From: App <app@sender.example>\r\nSubject: Invoice\r\n\r\nHello.\r\n.\r\n"
RELEASE_WITHIN = 5.0  # seconds for a hang-up's holds to go back (done by a task, at once)


async def patch_tenant(harness: GatewayHarness, **changes: Any) -> None:
    """``PATCH /api/v1/tenants/default`` on the gateway's admin listener."""
    response = await admin(harness, "PATCH", "/api/v1/tenants/default", json=changes)
    assert response.status_code == 200, response.text


async def start(harness: GatewayHarness, quota: int) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(admin=ADMIN)
    await patch_tenant(harness, hourly_quota=quota)


async def open_transaction(harness: GatewayHarness) -> RawClient:
    client = await harness.raw()
    assert (await client.command("EHLO client.test")).startswith("250")
    assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
    return client


def exhausted(answer: str, quota: int) -> bool:
    prefix = f"{replies.QUOTA_EXHAUSTED.code} {replies.QUOTA_EXHAUSTED.enhanced} "
    return answer.startswith(prefix) and f"hourly quota of {quota} recipients" in answer


async def data(client: RawClient) -> str:
    assert (await client.command("DATA")).startswith("354")
    await client.send(CONTENT)
    return await client.reply(timeout=10)


async def test_recipients_of_one_transaction_count_against_the_quota(
    harness: GatewayHarness,
) -> None:
    await start(harness, quota=3)
    async with await open_transaction(harness) as client:
        answers = [await client.command(f"RCPT TO:<r{n}@example.com>") for n in range(5)]
        assert answers[:3] == [str(replies.RECIPIENT_OK)] * 3
        assert all(exhausted(a, 3) for a in answers[3:]), answers
        assert (await data(client)).startswith(f"{replies.QUEUED} ")
    assert await harness.queued_count() == 3
    for n in (3, 4):  # each refusal recorded with the reply it got
        (event,) = await harness.events(f"r{n}@example.com")
        assert event.type is EventType.REJECTED
        assert f"{event.reply_code} {event.enhanced} {event.text}" == answers[n]
    # The three queued count from now on: nothing more fits.
    async with await open_transaction(harness) as client:
        assert exhausted(await client.command("RCPT TO:<late@example.com>"), 3)


async def test_concurrent_sessions_never_accept_more_than_the_quota(
    harness: GatewayHarness,
) -> None:
    quota, sessions, each = 13, 8, 6
    await start(harness, quota=quota)
    clients = [await open_transaction(harness) for _ in range(sessions)]
    try:

        async def session(index: int, client: RawClient) -> list[str]:
            return [
                await client.command(f"RCPT TO:<s{index}r{n}@example.com>") for n in range(each)
            ]

        async with asyncio.timeout(30):
            answers = await asyncio.gather(*(session(i, c) for i, c in enumerate(clients)))
        accepted = [a == str(replies.RECIPIENT_OK) for per in answers for a in per]
        assert sum(accepted) == quota, answers
        assert all(
            a == str(replies.RECIPIENT_OK) or exhausted(a, quota) for per in answers for a in per
        )
        for client, per in zip(clients, answers, strict=True):
            if str(replies.RECIPIENT_OK) in per:
                assert (await data(client)).startswith(f"{replies.QUEUED} ")
    finally:
        for client in clients:
            await client.close()
    assert await harness.queued_count() == quota


async def _rset(client: RawClient) -> None:
    assert (await client.command("RSET")).startswith("250")


async def _quit(client: RawClient) -> None:
    assert (await client.command("QUIT")).startswith("221")


async def _hang_up(client: RawClient) -> None:
    await client.close()


async def _refused_data(client: RawClient) -> None:
    assert (await client.command("DATA")).startswith("354")
    await client.send(b"Subject: no From header\r\n\r\nHello.\r\n.\r\n")
    assert await client.reply() == str(replies.FROM_SYNTAX)


async def _ehlo_then_mail(client: RawClient) -> None:
    assert (await client.command("EHLO client.test")).startswith("250")
    assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)


ENDINGS: dict[str, Callable[[RawClient], Awaitable[None]]] = {
    "rset": _rset,
    "quit": _quit,
    "hang_up": _hang_up,
    "refused_data": _refused_data,
    "ehlo_then_mail": _ehlo_then_mail,
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
async def test_a_transaction_that_ends_without_a_message_gives_its_holds_back(
    harness: GatewayHarness, ending: str
) -> None:
    await start(harness, quota=2)
    first = await open_transaction(harness)
    try:
        for n in range(2):
            assert await first.command(f"RCPT TO:<a{n}@example.com>") == str(replies.RECIPIENT_OK)
        async with await open_transaction(harness) as second:
            assert exhausted(await second.command("RCPT TO:<b0@example.com>"), 2)
            await ENDINGS[ending](first)

            async def accepted() -> bool:
                return await second.command("RCPT TO:<b0@example.com>") == str(replies.RECIPIENT_OK)

            # a hang-up's holds go back by a task: wait for it, bounded
            await wait_until(accepted, RELEASE_WITHIN, what="the holds given back", interval=0.05)
            assert await second.command("RCPT TO:<b1@example.com>") == str(replies.RECIPIENT_OK)
            assert exhausted(await second.command("RCPT TO:<b2@example.com>"), 2)
            assert (await data(second)).startswith(f"{replies.QUEUED} ")
    finally:
        await first.close()
    assert await harness.queued_count() == 2
