"""Every RCPT refusal: a reply a person understands, recorded as a REJECTED event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core import replies
from gateway.core.model import EventType, Status, Suppression, SuppressionReason, Tenant
from tests.scenarios.harness import GatewayHarness, RawClient


async def open_transaction(harness: GatewayHarness) -> RawClient:
    client = await harness.raw()
    assert (await client.command("EHLO client.test")).startswith("250")
    assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
    return client


async def rcpt(harness: GatewayHarness, address: str) -> str:
    async with await open_transaction(harness) as client:
        return await client.command(f"RCPT TO:<{address}>")


async def assert_rejected(harness: GatewayHarness, address: str, reply: replies.Reply) -> None:
    events = await harness.events(address)
    rejected = [e for e in events if e.type is EventType.REJECTED]
    assert len(rejected) == 1, events
    (event,) = rejected
    assert (event.reply_code, event.enhanced, event.text) == (
        reply.code,
        reply.enhanced,
        reply.text,
    )
    assert event.tenant == "default"
    assert not [e for e in events if e.type is EventType.QUEUED]


def code_of(reply: replies.Reply) -> str:
    return f"{reply.code} {reply.enhanced} "


@pytest.mark.parametrize("address", ["a..b@example.com", "bob@", "bob"])
async def test_bad_syntax(harness: GatewayHarness, address: str) -> None:
    await harness.start()
    assert await rcpt(harness, address) == str(replies.RECIPIENT_SYNTAX)
    await assert_rejected(harness, address, replies.RECIPIENT_SYNTAX)


async def test_typo_domain_is_refused_naming_the_likely_address(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "gmial.com")  # the typo domain exists and takes mail
    await harness.start()
    answer = await rcpt(harness, "maria@gmial.com")
    assert answer.startswith(code_of(replies.RECIPIENT_TYPO))
    assert "maria@gmail.com" in answer
    events = await harness.events("maria@gmial.com")
    assert [e.type for e in events] == [EventType.REJECTED]
    assert (events[0].reply_code, events[0].enhanced) == (553, "5.1.3")
    assert "@gmail.com" in events[0].text


async def test_typo_domain_in_warn_mode_is_accepted(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "gmial.com")
    await harness.start(smtp={"typo_check": "warn"})
    assert await harness.send(["maria@gmial.com"]) == {}
    (received,) = await mx.wait_for(1, timeout=10)
    assert received.rcpt_tos == ("maria@gmial.com",)
    await harness.wait_status("maria@gmial.com", Status.SENT)


async def test_nonexistent_domain(harness: GatewayHarness) -> None:
    await harness.start()
    assert await rcpt(harness, "bob@nowhere.example") == str(replies.NO_SUCH_DOMAIN)
    await assert_rejected(harness, "bob@nowhere.example", replies.NO_SUCH_DOMAIN)


async def test_null_mx_domain(harness: GatewayHarness) -> None:
    harness.dns.add_null_mx("nomail.example")
    await harness.start()
    assert await rcpt(harness, "bob@nomail.example") == str(replies.NULL_MX)
    await assert_rejected(harness, "bob@nomail.example", replies.NULL_MX)


async def test_dns_failure_is_temporary(harness: GatewayHarness) -> None:
    harness.dns.set_servfail("broken.example")
    await harness.start()
    assert await rcpt(harness, "bob@broken.example") == str(replies.DNS_TEMPFAIL)
    await assert_rejected(harness, "bob@broken.example", replies.DNS_TEMPFAIL)


async def test_suppressed_address_names_reason_and_date(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    since = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
    await gw.store.add_suppression(
        Suppression("default", "gone@example.com", SuppressionReason.NONEXISTENT_ADDRESS, since)
    )
    answer = await rcpt(harness, "gone@example.com")
    assert answer.startswith(code_of(replies.SUPPRESSED))
    assert "nonexistent_address" in answer
    assert "2024-03-05" in answer
    (event,) = await harness.events("gone@example.com")
    assert event.type is EventType.REJECTED
    assert f"{event.reply_code} {event.enhanced} {event.text}" == answer


async def test_exhausted_hourly_quota_names_the_quota(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    await gw.store.update_tenant(Tenant("default", hourly_quota=1))  # type: ignore[attr-defined]
    gw.tenants.invalidate()

    assert await harness.send(["first@example.com"]) == {}
    await mx.wait_for(1, timeout=10)
    answer = await rcpt(harness, "second@example.com")
    assert answer.startswith(code_of(replies.QUOTA_EXHAUSTED))
    assert "hourly quota of 1" in answer
    (event,) = await harness.events("second@example.com")
    assert event.type is EventType.REJECTED
    assert f"{event.reply_code} {event.enhanced} {event.text}" == answer


async def test_more_than_max_recipients(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp={"max_recipients": 2})
    async with await open_transaction(harness) as client:
        for n in range(2):
            assert await client.command(f"RCPT TO:<r{n}@example.com>") == str(replies.RECIPIENT_OK)
        answer = await client.command("RCPT TO:<r2@example.com>")
    assert answer == str(replies.TOO_MANY_RECIPIENTS)
    await assert_rejected(harness, "r2@example.com", replies.TOO_MANY_RECIPIENTS)
