"""Per-tenant shaping: List-Unsubscribe per recipient (RFC 8058) and classic bounce notices."""

from __future__ import annotations

import re

from gateway.core import verp
from gateway.core.model import Status
from tests.scenarios.harness import SECRET, GatewayHarness


async def test_list_unsubscribe_is_per_recipient_and_signed_tokens_name_them(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(public={"base_url": "https://mail.gateway.example"})
    await gw.store.update_tenant_settings("default", {"list_unsubscribe": True})  # type: ignore[attr-defined]
    await gw.relay.shaper.refresh(force=True)  # type: ignore[union-attr]

    # List-Unsubscribe goes on marketing messages only (issue 15).
    await harness.send(
        ["ana@example.com", "bia@example.com"], headers="X-Gateway-Stream: marketing\r\n"
    )
    received = await mx.wait_for(2, timeout=10)

    # one transaction per recipient, each with its own token
    assert sorted(m.rcpt_tos for m in received) == [("ana@example.com",), ("bia@example.com",)]
    for message in received:
        (rcpt,) = message.rcpt_tos
        head = message.content.split(b"\r\n\r\n", 1)[0].decode()
        match = re.search(r"List-Unsubscribe: <mailto:u\+([a-z0-9]+)@bounces\.gateway\.test", head)
        assert match, head
        token = match.group(1)
        assert verp.parse_unsubscribe_token(token, [SECRET.encode()]) == ("default", rcpt)
        assert f"<https://mail.gateway.example/u/{token}>" in head
        assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
        assert "x-gateway-stream" not in head.lower()  # removed before relaying


async def test_tenant_without_the_switch_gets_no_header(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start()
    await harness.send(["ana@example.com", "bia@example.com"])
    (received,) = await mx.wait_for(1, timeout=10)
    assert len(received.rcpt_tos) == 2  # one transaction for both
    assert b"List-Unsubscribe" not in received.content


async def test_application_own_list_unsubscribe_is_kept_alone(harness: GatewayHarness) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    gw = await harness.start()
    await gw.store.update_tenant_settings("default", {"list_unsubscribe": True})  # type: ignore[attr-defined]
    await gw.relay.shaper.refresh(force=True)  # type: ignore[union-attr]
    body = (
        b"From: <app@sender.example>\r\nSubject: x\r\n"
        b"List-Unsubscribe: <https://app.example/unsub>\r\n\r\nhi\r\n"
    )
    await harness.send(["ana@example.com"], body=body)
    (received,) = await mx.wait_for(1, timeout=10)
    assert received.content.count(b"List-Unsubscribe:") == 1
    assert b"<https://app.example/unsub>" in received.content


async def test_final_failure_sends_a_bounce_notice_to_the_sender(harness: GatewayHarness) -> None:
    dest = harness.mx("127.0.0.2", "example.com")
    sender_mx = harness.mx("127.0.0.3", "sender.example")
    gw = await harness.start()
    await gw.store.update_tenant_settings("default", {"bounce_notice": True})  # type: ignore[attr-defined]
    await gw.relay.shaper.refresh(force=True)  # type: ignore[union-attr]

    await harness.send(["permfail-x@example.com"])
    await harness.wait_status("permfail-x@example.com", Status.BOUNCED)
    (notice,) = await sender_mx.wait_for(1, timeout=10)

    # the fake records the null reverse-path as "<>": a notice never causes another
    assert notice.mail_from == "<>"
    assert notice.rcpt_tos == ("app@sender.example",)
    assert b"report-type=delivery-status" in notice.content
    assert b"Final-Recipient: rfc822; permfail-x@example.com" in notice.content
    assert b"Status: 5.1.1" in notice.content
    assert dest.messages == []


async def test_no_notice_without_the_switch(harness: GatewayHarness) -> None:
    harness.mx("127.0.0.2", "example.com")
    sender_mx = harness.mx("127.0.0.3", "sender.example")
    await harness.start()
    await harness.send(["permfail-x@example.com"])
    await harness.wait_status("permfail-x@example.com", Status.BOUNCED)
    await harness.send(["ok@example.com"])  # a later message proves the relay moved on
    await harness.wait_status("ok@example.com", Status.SENT)
    assert sender_mx.messages == []
