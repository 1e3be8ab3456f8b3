"""Each kind of RCPT refusal, over real SMTP: the ``rejected`` event stores the check's typed
reason (``core.model.Reason``) as its reason, never a generic ``intake_refused``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from gateway.core import replies
from gateway.core.model import EventType, Reason, Suppression, SuppressionReason, Tenant
from tests.scenarios.harness import GatewayHarness


async def _refused_once(harness: GatewayHarness, address: str, before: list[str]) -> str:
    """Open a transaction, RCPT ``before`` (accepted) and then ``address``; its reply."""
    async with await harness.raw() as client:
        assert (await client.command("EHLO client.test")).startswith("250")
        assert await client.command("MAIL FROM:<app@sender.example>") == str(replies.SENDER_OK)
        for other in before:
            assert await client.command(f"RCPT TO:<{other}>") == str(replies.RECIPIENT_OK)
        return await client.command(f"RCPT TO:<{address}>")


Setup = Callable[[GatewayHarness], Awaitable[None]]


async def _plain(harness: GatewayHarness) -> None:
    await harness.start()


async def _typo(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "gmial.com")
    await harness.start()


async def _null_mx(harness: GatewayHarness) -> None:
    harness.dns.add_null_mx("nomail.example")
    await harness.start()


async def _servfail(harness: GatewayHarness) -> None:
    harness.dns.set_servfail("broken.example")
    await harness.start()


async def _suppressed(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    since = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
    await gw.store.add_suppression(
        Suppression("default", "gone@example.com", SuppressionReason.COMPLAINT, since)
    )


async def _quota(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    await gw.store.update_tenant(Tenant("default", hourly_quota=1))  # type: ignore[attr-defined]
    gw.tenants.invalidate()


async def _limit(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp={"max_recipients": 1})


# (setup, recipients accepted first, the refused address, its reply's code, the reason)
CASES: dict[str, tuple[Setup, list[str], str, replies.Reply, Reason]] = {
    "invalid": (_plain, [], "a..b@example.com", replies.RECIPIENT_SYNTAX, Reason.INVALID),
    "typo": (_typo, [], "maria@gmial.com", replies.RECIPIENT_TYPO, Reason.TYPO),
    "no_such_domain": (
        _plain,
        [],
        "bob@nowhere.example",
        replies.NO_SUCH_DOMAIN,
        Reason.NO_SUCH_DOMAIN,
    ),
    "null_mx": (_null_mx, [], "bob@nomail.example", replies.NULL_MX, Reason.NULL_MX),
    "dns_tempfail": (
        _servfail,
        [],
        "bob@broken.example",
        replies.DNS_TEMPFAIL,
        Reason.DNS_TEMPFAIL,
    ),
    "suppressed": (_suppressed, [], "gone@example.com", replies.SUPPRESSED, Reason.SUPPRESSED),
    "quota": (
        _quota,
        ["first@example.com"],
        "second@example.com",
        replies.QUOTA_EXHAUSTED,
        Reason.QUOTA,
    ),
    "too_many_recipients": (
        _limit,
        ["r0@example.com"],
        "r1@example.com",
        replies.TOO_MANY_RECIPIENTS,
        Reason.TOO_MANY_RECIPIENTS,
    ),
}


@pytest.mark.parametrize("kind", list(CASES))
async def test_the_refusal_stores_its_typed_reason(harness: GatewayHarness, kind: str) -> None:
    setup, before, address, reply, reason = CASES[kind]
    await setup(harness)
    answer = await _refused_once(harness, address, before)
    assert answer.startswith(f"{reply.code} {reply.enhanced} "), answer
    rejected = [e for e in await harness.events(address) if e.type is EventType.REJECTED]
    assert len(rejected) == 1, rejected
    assert rejected[0].reason is reason
    assert f"{rejected[0].reply_code} {rejected[0].enhanced} {rejected[0].text}" == answer
