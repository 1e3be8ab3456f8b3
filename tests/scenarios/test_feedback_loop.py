"""Complaints from providers' feedback loops at ``bounce.fbl_address`` (issue 16 item 6),
over real SMTP on loopback.

A Yahoo-style ARF report and Microsoft JMRP reports (``tests/data/fbl/``) enclosing a message
the gateway delivered are attributed through the signed return path the original carries
(``Original-Mail-From``, ``Return-Path``), else through its Message-ID and the reported
recipient, and recorded as a complaint exactly like a report to the message's own return
path: the recipient stays ``sent``, the address is suppressed as a complaint. A report that
names nobody (a foreign return path, a Message-ID we never sent, a forged token) is stored,
counted and listed by ``GET /api/v1/feedback-reports``, and suppresses nobody.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from string import Template

import pytest

from gateway.core.model import Category, EventType, Status, SuppressionReason
from tests.scenarios.admin_api import ADMIN, admin, metric, recipient
from tests.scenarios.harness import GatewayHarness

DATA = Path(__file__).resolve().parents[1] / "data" / "fbl"
TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}
FBL = "fbl@bounces.gateway.test"
FOREIGN = "<bounce-9931@forwarder.example>"


def report(
    sample: str,
    original: bytes,
    rcpt: str,
    mail_from: str,
    *,
    to: str = FBL,
) -> bytes:
    """The sample ``sample`` around ``original`` (as the provider received it, with the
    Return-Path its MTA added from ``mail_from``), in CRLF."""
    text = (DATA / sample).read_text(encoding="utf-8").replace("\n", "\r\n")
    enclosed = f"Return-Path: {mail_from}\r\n".encode() + original
    filled = Template(text).substitute(
        FBL=to, RCPT=rcpt, MAIL_FROM=mail_from, ORIGINAL="\x00ORIGINAL\x00"
    )
    head, _, tail = filled.encode().partition(b"\x00ORIGINAL\x00")
    return head + enclosed.rstrip(b"\r\n") + b"\r\n" + tail


async def delivered(harness: GatewayHarness, address: str, message_id: str) -> tuple[str, bytes]:
    """Send one message to ``address`` with ``message_id``; the return path and the bytes
    the destination received."""
    mx = harness.mxs[0]
    before = len(mx.messages)
    refused = await harness.send([address], headers=f"Message-ID: {message_id}\r\n")
    assert refused == {}, refused
    messages = await mx.wait_for(before + 1, timeout=10)
    await harness.wait_status(address, Status.SENT)
    return messages[before].mail_from, messages[before].content


async def assert_complaint(harness: GatewayHarness, address: str) -> None:
    assert harness.gw is not None
    reports = [e for e in await harness.events(address) if e.type is EventType.REPORT]
    assert len(reports) == 1, reports
    assert reports[0].category is Category.COMPLAINT
    assert reports[0].details.get("feedback_type") == "abuse"
    found = await harness.gw.store.find_suppression("default", address, datetime.now(UTC))
    assert found is not None
    assert found.reason is SuppressionReason.COMPLAINT
    body = await recipient(harness, address)
    assert body["recipient"]["status"] == Status.SENT.value  # delivered, then complained
    assert body["recipient"]["category"] == Category.COMPLAINT.value


async def stored(harness: GatewayHarness) -> list[dict[str, object]]:
    response = await admin(harness, "GET", "/api/v1/feedback-reports")
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


@pytest.mark.parametrize("sample", ["yahoo_arf.eml", "microsoft_jmrp.eml"])
async def test_report_is_attributed_by_the_return_path_token(
    harness: GatewayHarness, sample: str
) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN)
    return_path, original = await delivered(harness, "ana@example.com", "<inv-42@sender.example>")
    assert return_path.startswith("b+")

    # The report comes to the one feedback-loop address, not to the return path.
    code, _ = await harness.send_bounce(
        FBL, report(sample, original, "ana@example.com", f"<{return_path}>")
    )

    assert code == 250
    await assert_complaint(harness, "ana@example.com")
    assert await metric(harness, "gateway_feedback_reports_total", result="attributed") == 1
    assert await metric(harness, "gateway_complaints_total", feedback_type="abuse") == 1
    assert await stored(harness) == []


@pytest.mark.parametrize("sample", ["yahoo_arf.eml", "microsoft_jmrp.eml"])
async def test_report_is_attributed_by_message_id_and_recipient(
    harness: GatewayHarness, sample: str
) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN)
    await delivered(harness, "bia@example.com", "<inv-43@sender.example>")
    # Another recipient of another message: the report must not touch it.
    await delivered(harness, "caio@example.com", "<inv-44@sender.example>")
    _, original = await delivered(harness, "davi@example.com", "<inv-45@sender.example>")
    # A forwarder rewrote the envelope sender: no token of ours survives.
    code, _ = await harness.send_bounce(FBL, report(sample, original, "davi@example.com", FOREIGN))

    assert code == 250
    await assert_complaint(harness, "davi@example.com")
    for other in ("bia@example.com", "caio@example.com"):
        assert not [e for e in await harness.events(other) if e.type is EventType.REPORT]
    assert await metric(harness, "gateway_feedback_reports_total", result="attributed") == 1
    assert await stored(harness) == []


async def test_redacted_report_is_attributed_to_the_only_recipient_of_the_message(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN)
    _, original = await delivered(harness, "eva@example.com", "<inv-46@sender.example>")
    redacted = original.replace(b"To: eva@example.com", b"To: redacted")
    assert redacted != original

    code, _ = await harness.send_bounce(
        FBL, report("microsoft_arf.eml", redacted, "eva@example.com", FOREIGN)
    )

    assert code == 250
    await assert_complaint(harness, "eva@example.com")


async def test_unattributable_reports_are_stored_counted_and_suppress_nobody(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(smtp=TRUSTED, admin=ADMIN)
    _, original = await delivered(harness, "fabi@example.com", "<inv-47@sender.example>")
    # A message we never sent, from a foreign return path, about one of our recipients.
    stranger = original.replace(b"<inv-47@sender.example>", b"<never-sent@elsewhere.example>")
    code, _ = await harness.send_bounce(
        FBL, report("yahoo_arf.eml", stranger, "fabi@example.com", FOREIGN)
    )
    assert code == 250
    # A return path at our bounce domain with a forged token.
    forged = "<b+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@bounces.gateway.test>"
    code, _ = await harness.send_bounce(
        FBL, report("microsoft_jmrp.eml", stranger, "fabi@example.com", forged)
    )
    assert code == 250
    # Not a report at all.
    code, _ = await harness.send_bounce(FBL, b"Subject: hello\r\n\r\nAre you there?\r\n")
    assert code == 250

    assert not [e for e in await harness.events("fabi@example.com") if e.type is EventType.REPORT]
    assert await gw.store.find_suppression("default", "fabi@example.com", datetime.now(UTC)) is None
    assert await metric(harness, "gateway_feedback_reports_total", result="unattributed") == 3
    assert await metric(harness, "gateway_feedback_reports_total", result="attributed") == 0
    items = await stored(harness)
    assert [i["why"] for i in items] == ["not_a_report", "bad_token", "no_match"]
    yahoo = items[2]
    assert yahoo["reporter"] == "Yahoo!-Mail-Feedback/2.0"
    assert yahoo["feedback_type"] == "abuse"
    assert yahoo["source_ip"] == "203.0.113.25"
    assert yahoo["original_rcpt_to"] == "fabi@example.com"
    assert yahoo["original_message_id"] == "<never-sent@elsewhere.example>"
    assert yahoo["original_mail_from"] == "bounce-9931@forwarder.example"
    assert items[1]["reporter"] == "hotmail.com"
    # Paged by id.
    response = await admin(harness, "GET", "/api/v1/feedback-reports", params={"limit": 2})
    page = response.json()
    assert len(page["items"]) == 2
    assert page["next_before_id"] == page["items"][1]["id"]
    response = await admin(
        harness, "GET", "/api/v1/feedback-reports", params={"before_id": page["next_before_id"]}
    )
    assert [i["why"] for i in response.json()["items"]] == ["no_match"]


async def test_only_the_configured_local_part_takes_reports(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN, bounce={"fbl_address": "arf.reports"})
    _, original = await delivered(harness, "gil@example.com", "<inv-48@sender.example>")
    body = report("yahoo_arf.eml", original, "gil@example.com", FOREIGN)

    code, _ = await harness.send_bounce(FBL, body)
    assert code == 550  # fbl@ is no longer an address here
    code, _ = await harness.send_bounce("ARF.Reports@Bounces.Gateway.Test", body)
    assert code == 250
    await assert_complaint(harness, "gil@example.com")


async def test_a_token_naming_two_recipients_blames_only_the_reported_one(
    harness: GatewayHarness,
) -> None:
    harness.mx("127.0.0.2", "example.com")
    await harness.start(smtp=TRUSTED, admin=ADMIN)
    mx = harness.mxs[0]
    both = ["hana@example.com", "ivo@example.com"]
    assert await harness.send(both, headers="Message-ID: <inv-49@sender.example>\r\n") == {}
    [received] = await mx.wait_for(1, timeout=10)
    assert sorted(received.rcpt_tos) == both  # one transaction: one token names both
    for address in both:
        await harness.wait_status(address, Status.SENT)

    code, _ = await harness.send_bounce(
        FBL, report("yahoo_arf.eml", received.content, "ivo@example.com", received.mail_from)
    )

    assert code == 250
    await assert_complaint(harness, "ivo@example.com")
    assert not [e for e in await harness.events("hana@example.com") if e.type is EventType.REPORT]
