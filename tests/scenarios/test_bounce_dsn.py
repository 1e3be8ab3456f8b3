"""Bounce ingress: an RFC 3464 DSN to the signed return path lands on the recipient the
token names, and only on it; a forged token is refused at RCPT and records nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core import replies
from gateway.core.model import Category, EventType, Status, SuppressionReason
from tests.scenarios.harness import GatewayHarness, make_dsn

# Only 127.0.0.1 relays without AUTH: bounces come from 127.0.0.9, an untrusted client.
TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}


async def test_dsn_to_the_return_path_bounces_and_suppresses(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)
    return_path = await harness.deliver("alice@example.com")

    code, text = await harness.send_bounce(return_path, make_dsn(return_path, "alice@example.com"))

    assert (code, text.decode()) == (250, f"{replies.BOUNCE_RECORDED.enhanced} Report received")
    (row,) = await harness.recipients("alice@example.com")
    assert row.status is Status.BOUNCED
    assert row.category is Category.NONEXISTENT_ADDRESS
    reports = [e for e in await harness.events("alice@example.com") if e.type is EventType.REPORT]
    assert len(reports) == 1
    assert reports[0].category is Category.NONEXISTENT_ADDRESS
    assert reports[0].enhanced == "5.1.1"
    assert reports[0].recipient_id == row.recipient_id
    suppression = await gw.store.find_suppression("default", "alice@example.com", datetime.now(UTC))
    assert suppression is not None
    assert suppression.reason is SuppressionReason.NONEXISTENT_ADDRESS
    assert suppression.event_id == reports[0].event_id


async def test_dsn_naming_another_address_lands_only_on_the_tokens_recipient(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)
    return_path = await harness.deliver("bob@example.com")

    forged_body = make_dsn(return_path, "victim@other.example")
    code, _ = await harness.send_bounce(return_path, forged_body)

    assert code == 250
    assert await gw.store.events_for("victim@other.example", None, 10) == []
    assert (
        await gw.store.find_suppression("default", "victim@other.example", datetime.now(UTC))
        is None
    )
    reports = [e for e in await harness.events("bob@example.com") if e.type is EventType.REPORT]
    assert len(reports) == 1
    assert reports[0].address == "bob@example.com"


async def test_forged_token_is_refused_at_rcpt_and_records_nothing(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED)
    return_path = await harness.deliver("carol@example.com")
    before = await harness.events("carol@example.com")

    local, _, domain = return_path.partition("@")
    i = len(local) // 2
    forged = local[:i] + ("a" if local[i] != "a" else "b") + local[i + 1 :] + "@" + domain
    code, text = await harness.send_bounce(forged, make_dsn(forged, "carol@example.com"))

    assert code == replies.BOUNCE_TOKEN_INVALID.code
    assert text.decode().startswith(replies.BOUNCE_TOKEN_INVALID.enhanced)
    assert await harness.events("carol@example.com") == before
    (row,) = await harness.recipients("carol@example.com")
    assert row.status is Status.SENT
    assert (
        await gw.store.find_suppression("default", "carol@example.com", datetime.now(UTC)) is None
    )
