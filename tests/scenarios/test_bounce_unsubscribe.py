"""Mail to the signed unsubscribe address ``u+<token>@bounce.domain`` (the mailto in
List-Unsubscribe, a reply "SAIR") suppresses the address as an opt-out; a tampered token is
refused at RCPT."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.core import replies, verp
from gateway.core.model import EventType, SuppressionReason
from gateway.core.streams import Scope
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
    # The unsubscribe address is in List-Unsubscribe, which only marketing messages carry:
    # the opt-out stops marketing (refused at the end of DATA), invoices go on (issue 15).
    assert suppression.scope is Scope.MARKETING
    mx = harness.mx("127.0.0.2", "example.com")
    refused = await harness.send([ADDRESS, "other@example.com"])
    assert refused == {}
    await mx.wait_for(1, timeout=10)
    await harness.send([ADDRESS, "other@example.com"], headers="X-Gateway-Stream: marketing\r\n")
    newsletters = await mx.wait_for(2, timeout=10)
    assert newsletters[1].rcpt_tos == ("other@example.com",)
    refusals = [e for e in await harness.events(ADDRESS) if e.type is EventType.REJECTED]
    assert [e.text for e in refusals] == [
        f"{replies.SUPPRESSED.text} (opt_out, marketing mail) since {suppression.since:%Y-%m-%d}"
    ]


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
