"""Hold instead of refuse, then replay (issue 15 item 2), over real SMTP.

A tenant set to ``suppressed_action = "hold"`` gets ``250`` for a blocked address; the
recipient waits ``held`` (reason ``suppressed``), visible as such through the API. An unblock
within the window releases it to the relay in the order the mail came, delivered exactly
once; past the window it ends ``expired`` with an event, a webhook and a bounce notice to the
sender.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from gateway.core.model import EventType, Reason, Status
from tests.observability.receiver import Receiver
from tests.scenarios.admin_api import ADMIN, admin
from tests.scenarios.harness import GatewayHarness, OffsetClock
from tests.waiting import wait_until

WEBHOOKS = {"allow_private_targets": True, "retry_intervals": ["1s"]}
GONE = "gone@example.com"


async def _hold_tenant(harness: GatewayHarness, **more: object) -> None:
    patched = await admin(
        harness, "PATCH", "/api/v1/tenants/default", json={"suppressed_action": "hold", **more}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["tenant"]["suppressed_action"] == "hold"


async def _block(harness: GatewayHarness, address: str) -> None:
    blocked = await admin(
        harness, "POST", "/api/v1/suppressions", json={"address": address, "note": "asked"}
    )
    assert blocked.status_code == 201, blocked.text


async def test_held_then_unblocked_is_delivered_once_in_order(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(admin=ADMIN, policy={"sweep_interval": "1s"}, store=store_section)
    await _hold_tenant(harness)
    await _block(harness, GONE)

    # Three messages: the blocked address is accepted (250) and kept; the other delivered.
    for n in range(3):
        refused = await harness.send([GONE, "ok@example.com"], headers=f"X-Seq: {n}\r\n")
        assert refused == {}, refused
    await mx.wait_for(3)
    held = await harness.recipients(GONE)
    assert [r.status for r in held] == [Status.HELD] * 3
    assert all(m.rcpt_tos == ("ok@example.com",) for m in mx.messages)

    detail = await admin(harness, "GET", f"/api/v1/messages/{held[0].queue_id}")
    assert detail.status_code == 200, detail.text
    row = next(r for r in detail.json()["recipients"] if r["address"] == GONE)
    assert row["status"] == "held"
    assert row["reason"] == "suppressed"
    assert row["held_until"] is not None
    report = await admin(harness, "GET", f"/api/v1/recipients/{GONE}", params={"lang": "en"})
    assert report.status_code == 200, report.text
    assert report.json()["recipient"]["status"] == "held"
    assert report.json()["recipient"]["reason"] == "suppressed"

    # The unblock releases the three, in the order they came; each delivered once.
    unblocked = await admin(
        harness, "DELETE", f"/api/v1/suppressions/{GONE}", params={"reason": "ticket 7"}
    )
    assert unblocked.status_code == 200, unblocked.text
    await mx.wait_for(6, timeout=15)
    for r in held:
        await harness.wait_status(GONE, Status.SENT, timeout=10)
        assert r.queue_id
    to_gone = [m for m in mx.messages if m.rcpt_tos == (GONE,)]
    seqs = [m.content.split(b"X-Seq: ")[1][:1] for m in to_gone]
    assert sorted(seqs) == [b"0", b"1", b"2"]
    # A second unblock path (the sweep, running every second) releases nothing more.
    await asyncio.sleep(2.5)
    assert len([m for m in mx.messages if m.rcpt_tos == (GONE,)]) == 3
    rows = await harness.recipients(GONE)
    assert [r.status for r in rows] == [Status.SENT] * 3
    kinds = [e.type for e in await harness.events(GONE) if e.recipient_id == rows[0].recipient_id]
    assert EventType.HELD in kinds
    assert EventType.RELEASED in kinds
    assert EventType.SENT in kinds


async def test_held_past_the_window_expires_with_a_notice(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    sender_mx = harness.mx("127.0.0.3", "sender.example")
    clock = OffsetClock()
    async with Receiver() as hooks:
        gw = await harness.start(
            clock,
            admin=ADMIN,
            webhooks=WEBHOOKS,
            policy={"sweep_interval": "1s"},
            store=store_section,
        )
        await _hold_tenant(harness, hold_window="1h", bounce_notice=True)
        await gw.store.set_webhook("default", hooks.url, "whsec_scenario")
        gw.tenants.invalidate()
        await _block(harness, GONE)
        assert await harness.send([GONE]) == {}
        held = await harness.wait_status(GONE, Status.HELD)

        clock.jump(timedelta(minutes=59))  # inside the window: still held
        await asyncio.sleep(2.5)
        assert (await harness.recipients(GONE))[0].status is Status.HELD
        clock.jump(timedelta(minutes=2))  # past it
        expired = await harness.wait_status(GONE, Status.EXPIRED, timeout=10)
        assert expired.recipient_id == held.recipient_id
        events = [e for e in await harness.events(GONE) if e.type is EventType.EXPIRED]
        assert [e.reason for e in events] == [Reason.HOLD_WINDOW_EXCEEDED]
        # The sender is told (the tenant asks for notices) and the application by webhook.
        notices = await sender_mx.wait_for(1, timeout=10)
        assert notices[0].mail_from in ("", "<>")  # a null reverse-path
        assert GONE.encode() in notices[0].content
        await wait_until(
            lambda: any(
                p["type"] == "expired" and p["recipient"] == GONE
                for p in (json.loads(r.body) for r in hooks.requests)
            ),
            10,
            what="the expired webhook",
        )
        assert mx.messages == []


async def test_the_stream_header_recheck_holds_too(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    """Suppressed for marketing only: accepted at RCPT (checked as transactional), then the
    header names marketing, and the end-of-DATA re-check holds it rather than refusing."""
    mx = harness.mx("127.0.0.2", "example.com")
    await harness.start(admin=ADMIN, policy={"sweep_interval": "1s"}, store=store_section)
    await _hold_tenant(harness)
    blocked = await admin(
        harness,
        "POST",
        "/api/v1/suppressions",
        json={"address": GONE, "note": "opt-out", "scope": "marketing"},
    )
    assert blocked.status_code == 201, blocked.text
    refused = await harness.send(
        [GONE, "ok@example.com"], headers="X-Gateway-Stream: marketing\r\n"
    )
    assert refused == {}, refused
    held = await harness.wait_status(GONE, Status.HELD)
    await mx.wait_for(1)
    assert mx.messages[0].rcpt_tos == ("ok@example.com",)
    # Invoices still flow: the same address, transactional, is delivered.
    assert await harness.send([GONE]) == {}
    await mx.wait_for(2)
    assert mx.messages[1].rcpt_tos == (GONE,)
    assert (await harness.recipients(GONE))[0].recipient_id == held.recipient_id
