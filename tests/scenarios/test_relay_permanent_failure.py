"""A 550 5.1.1 at RCPT: the recipient bounces as nonexistent_address, the address is
suppressed at once (with the event that caused it), and the next message to it is refused
at RCPT."""

from __future__ import annotations

import smtplib

from gateway.core import replies
from gateway.core.model import Category, EventType, Status, SuppressionReason
from tests.scenarios.harness import GatewayHarness

ADDRESS = "permfail-x@example.com"


async def test_550_user_unknown_bounces_and_suppresses_the_address(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()

    assert await harness.send([ADDRESS, "ok@example.com"]) == {}

    row = await harness.wait_status(ADDRESS, Status.BOUNCED)
    assert row.category is Category.NONEXISTENT_ADDRESS
    assert row.attempts == 1
    assert row.last_reply.startswith("550 5.1.1")
    (received,) = await mx.wait_for(1)
    assert received.rcpt_tos == ("ok@example.com",)
    await harness.wait_status("ok@example.com", Status.SENT)

    events = await harness.events(ADDRESS)
    bounced = [e for e in events if e.type is EventType.BOUNCED]
    assert len(bounced) == 1
    assert bounced[0].reply_code == 550
    assert bounced[0].enhanced == "5.1.1"
    assert bounced[0].category is Category.NONEXISTENT_ADDRESS
    assert bounced[0].remote_host  # which host refused is recorded

    suppression = await gw.store.find_suppression("default", ADDRESS, gw.relay.clock.now())
    assert suppression is not None
    assert suppression.reason is SuppressionReason.NONEXISTENT_ADDRESS
    assert suppression.expires_at is None
    assert suppression.event_id == bounced[0].event_id
    assert EventType.SUPPRESSED in [e.type for e in await harness.events(ADDRESS)]
    # The other recipient is not suppressed.
    assert (
        await gw.store.find_suppression("default", "ok@example.com", gw.relay.clock.now()) is None
    )

    # The next message to the address is refused at RCPT, with the reason.
    refused = await harness.send([ADDRESS, "ok2@example.com"])
    assert set(refused) == {ADDRESS}
    code, text = refused[ADDRESS]
    assert code == replies.SUPPRESSED.code
    assert text.decode().startswith(replies.SUPPRESSED.enhanced)
    await mx.wait_for(2)
    assert mx.messages[1].rcpt_tos == ("ok2@example.com",)
    # The mx saw the suppressed address exactly once (the first attempt).
    assert mx.commands("RCPT").count(ADDRESS) == 1


async def test_suppressed_address_alone_is_refused_and_nothing_queued(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start()
    await harness.send([ADDRESS])
    await harness.wait_status(ADDRESS, Status.BOUNCED)

    try:
        await harness.send([ADDRESS])
    except smtplib.SMTPRecipientsRefused as exc:
        code, _ = exc.recipients[ADDRESS]
        assert code == 550
    else:
        raise AssertionError("a suppressed address was accepted")
    rows = await harness.recipients(ADDRESS)
    assert len(rows) == 1  # no second recipient row was queued
    rejected = [e for e in await harness.events(ADDRESS) if e.type is EventType.REJECTED]
    assert len(rejected) == 1
    assert rejected[0].enhanced == "5.7.1"
