"""Unblock on probation and suppressions per stream (issue 15 items 1 and 3), over real SMTP,
on SQLite and on PostgreSQL.

* An unblock starts a probation (``policy.probation``, 30 days): the API answers its end, the
  recipient API shows it and the delivery that succeeded during it; the first blocking
  failure (here one mailbox-full DSN, which alone never blocks) blocks again at once with
  reason ``probation_failure``, naming the unblock it ends.
* A marketing opt-out (the mailto of ``List-Unsubscribe``, which only marketing messages
  carry) stops newsletters and lets invoices through; ``X-Gateway-Stream`` never reaches the
  destination; a header naming another stream than the one ``RCPT`` checked is checked
  again at the end of ``DATA``, recipient by recipient.
"""

from __future__ import annotations

import re
import smtplib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gateway.core import replies
from gateway.core.model import EventType, Reason, Status
from tests.scenarios.admin_api import ADMIN, admin, recipient
from tests.scenarios.harness import GatewayHarness, make_arf, make_dsn
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.fakes.mx import FakeMx

TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}
ADDRESS = "ana@example.com"
OTHER = "bia@example.com"
MARKETING = "X-Gateway-Stream: marketing\r\n"


def _close_to(text: str, expected: datetime, within: timedelta = timedelta(minutes=2)) -> bool:
    return abs(datetime.fromisoformat(text) - expected) < within


async def test_an_unblock_puts_the_address_on_probation_and_one_failure_blocks_again(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN, store=store_section)
    await harness.deliver(ADDRESS)  # the customer had mail before the block
    blocked = await admin(
        harness, "POST", "/api/v1/suppressions", json={"address": ADDRESS, "note": "ticket 1"}
    )
    assert blocked.status_code == 201, blocked.text
    assert blocked.json()["scope"] == "all"

    unblocked = await admin(
        harness, "DELETE", f"/api/v1/suppressions/{ADDRESS}", params={"reason": "ticket 2"}
    )
    assert unblocked.status_code == 200, unblocked.text
    body = unblocked.json()
    assert _close_to(body["probation_until"], datetime.now(UTC) + timedelta(days=30))
    (lifted,) = body["lifted"]
    assert lifted["probation_until"] == body["probation_until"]
    unblock_event = lifted["event_id"]
    report = await recipient(harness, ADDRESS)
    assert report["probation_until"] == body["probation_until"]
    assert report["probation"]["unblock_event_id"] == unblock_event
    assert report["probation"]["success_at"] is None

    # A delivery during the probation: shown (once the relay recorded it: the first
    # message's row is "sent" already, so deliver() may return as soon as the MX has it).
    return_path = await harness.deliver(ADDRESS)

    async def success_shown() -> object:
        return (await recipient(harness, ADDRESS))["probation"]["success_at"]

    await wait_until(success_shown, 10, what="the delivery during the probation shown")

    # One mailbox-full report (three are needed outside a probation) blocks again at once.
    dsn = make_dsn(return_path, ADDRESS, status="5.2.2", diagnostic="552 5.2.2 Mailbox full")
    code, _ = await harness.send_bounce(return_path, dsn)
    assert code == 250
    report = await recipient(harness, ADDRESS)
    assert report["status"] == "suppressed"
    assert report["reason"] == "probation_failure"
    assert report["suppression"]["scope"] == "all"
    assert f"(event {unblock_event})" in report["suppression"]["note"]
    assert report["probation"] is None  # the re-block ended it
    assert report["probation_until"] is None
    suppressed = [e for e in await harness.events(ADDRESS) if e.type is EventType.SUPPRESSED]
    assert suppressed[-1].reason is Reason.PROBATION_FAILURE
    assert suppressed[-1].details["unblock_event_id"] == str(unblock_event)
    # And the intake refuses the address again.
    refused = await harness.send([ADDRESS, OTHER])
    assert refused[ADDRESS][0] == replies.SUPPRESSED.code


async def test_a_tenant_probation_length_is_applied_and_shown(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    await harness.start(smtp=TRUSTED, admin=ADMIN, store=store_section)
    patched = await admin(harness, "PATCH", "/api/v1/tenants/default", json={"probation": "7d"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tenant"]["probation"] == "7d"
    bad = await admin(harness, "PATCH", "/api/v1/tenants/default", json={"probation": "soon"})
    assert bad.status_code == 422, bad.text
    assert "probation must be a duration" in bad.text
    await admin(harness, "POST", "/api/v1/suppressions", json={"address": ADDRESS})
    unblocked = await admin(
        harness, "DELETE", f"/api/v1/suppressions/{ADDRESS}", params={"reason": "ticket 3"}
    )
    assert unblocked.status_code == 200, unblocked.text
    until = unblocked.json()["probation_until"]
    assert _close_to(until, datetime.now(UTC) + timedelta(days=7))


def _token(message: bytes) -> str:
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    match = re.search(r"<mailto:(u\+[A-Za-z0-9_=\-]+@bounces\.gateway\.test)", head)
    assert match, head
    return match.group(1)


def _no_stream_header(mx: FakeMx) -> None:
    for message in mx.messages:
        head = message.content.split(b"\r\n\r\n", 1)[0].lower()
        assert b"x-gateway-stream" not in head, head


async def test_a_marketing_opt_out_stops_newsletters_and_lets_invoices_through(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN, store=store_section)
    patched = await admin(
        harness, "PATCH", "/api/v1/tenants/default", json={"list_unsubscribe": True}
    )
    assert patched.status_code == 200, patched.text
    harness.gw.tenants.invalidate()  # type: ignore[union-attr]
    await harness.gw.relay.shaper.refresh(force=True)  # type: ignore[union-attr]

    # An invoice (no header: the tenant's default, transactional): no List-Unsubscribe.
    assert await harness.send([ADDRESS]) == {}
    (invoice,) = await mx.wait_for(1, timeout=10)
    assert b"List-Unsubscribe" not in invoice.content
    # A newsletter: List-Unsubscribe, and the stream header removed on the way.
    assert await harness.send([ADDRESS], headers=MARKETING) == {}
    newsletter = (await mx.wait_for(2, timeout=10))[1]
    assert b"\r\nList-Unsubscribe: " in b"\r\n" + newsletter.content
    _no_stream_header(mx)

    async def both_sent() -> list[str]:
        found = [e for e in await harness.events(ADDRESS) if e.type is EventType.SENT]
        return sorted(e.details.get("stream", "") for e in found) if len(found) == 2 else []

    # Each delivery event names its message's stream (webhooks carry it).
    assert await wait_until(both_sent, 10, what="both sends recorded") == [
        "marketing",
        "transactional",
    ]

    # The customer unsubscribes by mail (the mailto of the header).
    to = _token(newsletter.content)
    sair = f"From: Ana <{ADDRESS}>\r\nTo: {to}\r\nSubject: SAIR\r\n\r\nSAIR\r\n".encode()
    code, _ = await harness.send_bounce(to, sair, sender=ADDRESS)
    assert code == 250
    report = await recipient(harness, ADDRESS)
    (opt_out,) = report["suppressions"]
    assert (opt_out["reason"], opt_out["scope"]) == ("opt_out", "marketing")
    assert report["status"] == "sent"  # invoices still go: the last recipient's status

    # Invoices still delivered.
    assert await harness.send([ADDRESS, OTHER]) == {}
    third = (await mx.wait_for(3, timeout=10))[2]
    assert sorted(third.rcpt_tos) == [ADDRESS, OTHER]
    # Newsletters refused for her (checked again at the end of DATA), sent to the other.
    assert await harness.send([ADDRESS, OTHER], headers=MARKETING) == {}
    messages = await mx.wait_for(4, timeout=10)
    assert [m.rcpt_tos for m in messages[3:]] == [(OTHER,)]
    refusals = [e for e in await harness.events(ADDRESS) if e.type is EventType.REJECTED]
    assert [e.reason for e in refusals] == [Reason.SUPPRESSED]
    assert "marketing mail" in refusals[0].text
    # A newsletter to her alone: the DATA reply refuses the whole message.
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await harness.send([ADDRESS], headers=MARKETING)
    assert refused.value.smtp_code == replies.SUPPRESSED.code
    assert b"marketing" in refused.value.smtp_error

    # Her recipient rows: the invoices sent, no newsletter queued after the opt-out.
    async def all_sent() -> bool:
        return [r.status for r in await harness.recipients(ADDRESS)] == [Status.SENT] * 3

    await wait_until(all_sent, 10, what="her three invoices sent, nothing else queued")
    _no_stream_header(mx)

    # The scope and the stream in the metrics.
    metrics = await admin(harness, "GET", "/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert re.search(
        r'gateway_suppressions_added_total\{[^}]*reason="opt_out"[^}]*scope="marketing"', text
    ), text
    assert re.search(r'gateway_stream_messages_accepted_total\{[^}]*stream="marketing"', text)


async def test_a_tenant_whose_default_is_marketing_is_refused_at_rcpt(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN, store=store_section)
    blocked = await admin(
        harness,
        "POST",
        "/api/v1/suppressions",
        json={"address": ADDRESS, "scope": "marketing", "note": "asked by phone"},
    )
    assert blocked.status_code == 201, blocked.text
    assert blocked.json()["scope"] == "marketing"
    patched = await admin(
        harness, "PATCH", "/api/v1/tenants/default", json={"default_stream": "marketing"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["tenant"]["default_stream"] == "marketing"
    harness.gw.tenants.invalidate()  # type: ignore[union-attr]

    # Without a header the message is marketing: refused at RCPT already.
    refused = await harness.send([ADDRESS, OTHER])
    assert refused[ADDRESS][0] == replies.SUPPRESSED.code
    # A header naming transactional: the other recipient is checked again and sent.
    assert await harness.send([OTHER], headers="X-Gateway-Stream: transactional\r\n") == {}
    await mx.wait_for(2, timeout=10)
    _no_stream_header(mx)


async def test_a_stream_header_naming_no_stream_is_refused(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, store=store_section)
    for header in (
        "X-Gateway-Stream: promo\r\n",
        MARKETING + "X-Gateway-Stream: transactional\r\n",
    ):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await harness.send([ADDRESS], headers=header)
        assert refused.value.smtp_code == 550
        assert refused.value.smtp_error.startswith(b"5.6.0 ")
        assert b"X-Gateway-Stream" in refused.value.smtp_error
    assert await harness.recipients(ADDRESS) == []
    # A folded header is read and removed whole; a body line with the same words is kept.
    body = (
        f"From: App <app@sender.example>\r\nTo: {ADDRESS}\r\nX-Gateway-Stream:\r\n marketing\r\n"
        "Subject: News\r\n\r\nX-Gateway-Stream: marketing\r\n"
    ).encode()
    assert await harness.send([ADDRESS], body=body) == {}
    (received,) = await mx.wait_for(1, timeout=10)
    head, _, rest = received.content.partition(b"\r\n\r\n")
    assert b"x-gateway-stream" not in head.lower()
    assert b" marketing" not in head
    assert rest == b"X-Gateway-Stream: marketing\r\n"
    (row,) = await harness.recipients(ADDRESS)
    assert row.status in (Status.QUEUED, Status.SENT)


async def _newsletter(harness: GatewayHarness, mx: FakeMx, address: str) -> str:
    """Send one marketing message to ``address`` and wait until it is delivered (the relay's
    record included); its return path."""
    before = len(mx.messages)
    assert await harness.send([address], headers=MARKETING) == {}
    received = (await mx.wait_for(before + 1, timeout=10))[before]

    async def sent() -> bool:
        return [r.status for r in await harness.recipients(address)] == [Status.SENT]

    await wait_until(sent, 10, what=f"the newsletter to {address} recorded as sent")
    return received.mail_from


async def test_a_complaint_suppresses_its_stream_or_every_stream_by_tenant_setting(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN, store=store_section)

    # A spam report about a newsletter: marketing stops, invoices go on.
    return_path = await _newsletter(harness, mx, ADDRESS)
    code, _ = await harness.send_bounce(return_path, make_arf(return_path, ADDRESS))
    assert code == 250
    report = await recipient(harness, ADDRESS)
    (complaint,) = report["suppressions"]
    assert (complaint["reason"], complaint["scope"]) == ("complaint", "marketing")
    suppressed = [e for e in await harness.events(ADDRESS) if e.type is EventType.SUPPRESSED]
    assert suppressed[-1].details["scope"] == "marketing"
    assert await harness.send([ADDRESS]) == {}  # an invoice: accepted at RCPT
    await mx.wait_for(2, timeout=10)

    # The tenant chooses "a complaint stops everything": the next one blocks every stream.
    patched = await admin(
        harness, "PATCH", "/api/v1/tenants/default", json={"complaint_scope": "all"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["tenant"]["complaint_scope"] == "all"
    harness.gw.tenants.invalidate()  # type: ignore[union-attr]
    return_path = await _newsletter(harness, mx, OTHER)
    code, _ = await harness.send_bounce(return_path, make_arf(return_path, OTHER))
    assert code == 250
    report = await recipient(harness, OTHER)
    assert report["status"] == "suppressed"
    assert report["suppression"]["scope"] == "all"
    refused = await harness.send([OTHER, ADDRESS])
    assert refused[OTHER][0] == replies.SUPPRESSED.code
    assert ADDRESS not in refused
