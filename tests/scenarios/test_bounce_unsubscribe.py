"""Mail to the signed unsubscribe address ``u+<token>@bounce.domain`` (the mailto in
List-Unsubscribe, a reply "SAIR") suppresses the address as an opt-out; a tampered token is
refused at RCPT."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core import replies, verp
from gateway.core.model import EventType, SuppressionReason
from tests.scenarios.harness import SECRET, GatewayHarness

TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}
ADDRESS = "henry@example.com"
DOMAIN = "bounces.gateway.test"


def _sair(to: str) -> bytes:
    return (f"From: Henry <{ADDRESS}>\r\nTo: {to}\r\nSubject: SAIR\r\n\r\nSAIR\r\n").encode()


async def test_mail_to_the_unsubscribe_address_is_an_opt_out(harness: GatewayHarness) -> None:
    gw = await harness.start(smtp=TRUSTED)
    token = verp.make_unsubscribe_token("default", ADDRESS, SECRET.encode())
    to = f"u+{token}@{DOMAIN}"

    code, _ = await harness.send_bounce(to, _sair(to), sender=ADDRESS)

    assert code == 250
    suppression = await gw.store.find_suppression("default", ADDRESS, datetime.now(UTC))
    assert suppression is not None
    assert suppression.reason is SuppressionReason.OPT_OUT
    assert suppression.expires_at is None
    events = await harness.events(ADDRESS)
    assert [e.type for e in events] == [EventType.SUPPRESSED]
    assert suppression.event_id == events[0].event_id
    # The opt-out is honoured at intake: the tenant can no longer send to the address.
    harness.mx("127.0.0.2", "example.com")
    refused = await harness.send([ADDRESS, "other@example.com"])
    assert refused[ADDRESS][0] == replies.SUPPRESSED.code


async def test_tampered_unsubscribe_token_is_refused(harness: GatewayHarness) -> None:
    gw = await harness.start(smtp=TRUSTED)
    token = verp.make_unsubscribe_token("default", ADDRESS, SECRET.encode())
    i = len(token) // 2
    tampered = token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1 :]
    to = f"u+{tampered}@{DOMAIN}"

    code, text = await harness.send_bounce(to, _sair(to), sender=ADDRESS)

    assert code == replies.BOUNCE_TOKEN_INVALID.code
    assert text.decode().startswith(replies.BOUNCE_TOKEN_INVALID.enhanced)
    assert await gw.store.find_suppression("default", ADDRESS, datetime.now(UTC)) is None
    assert await gw.store.events_for(ADDRESS, None, 10) == []
    # A token signed with another key is refused too.
    foreign = verp.make_unsubscribe_token("default", ADDRESS, b"another-secret-0123456789")
    code, _ = await harness.send_bounce(f"u+{foreign}@{DOMAIN}", _sair(to), sender=ADDRESS)
    assert code == replies.BOUNCE_TOKEN_INVALID.code
