"""A tenant paused by a bounce storm, then resumed (issue 15 item 4), over real SMTP.

Small thresholds (4 messages, 20 % bounces) stand in for the defaults (500, 5 %). The
storm pauses the tenant: new mail gets ``451 4.7.1`` saying the account is paused for
review, mail already queued is kept and not attempted (no attempt burnt), an event and a
webhook say so, the gauge shows it. An admin resumes through the API with a note (audited):
the queue is delivered and new mail accepted again.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
from pathlib import Path
from typing import Any

import pytest

from gateway.core.model import EventType, Reason, Status
from tests.observability.receiver import Receiver
from tests.scenarios.admin_api import ADMIN, admin, metric
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until

WEBHOOKS = {"allow_private_targets": True, "retry_intervals": ["1s"]}
POLICY = {"sweep_interval": "1s", "pause_min_messages": 4, "pause_bounce_rate": 0.2}


async def _tenant(harness: GatewayHarness) -> dict[str, object]:
    response = await admin(harness, "GET", "/api/v1/tenants/default")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_bounce_storm_pauses_the_tenant_until_resumed(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    slow = harness.mx("127.0.0.3", "slow.example")
    slow.mode = "greeting421"
    async with Receiver() as hooks:
        gw = await harness.start(admin=ADMIN, webhooks=WEBHOOKS, policy=POLICY, store=store_section)
        await gw.store.set_webhook("default", hooks.url, "whsec_scenario")
        gw.tenants.invalidate()
        # Queued before the storm, waiting for a retry.
        assert await harness.send(["wait@slow.example"]) == {}
        deferred = await harness.wait_status("wait@slow.example", Status.DEFERRED)
        assert deferred.attempts == 1

        for n in range(4):
            assert await harness.send([f"permfail-{n}@example.com"]) == {}

        async def paused() -> bool:
            return bool((await _tenant(harness))["paused"])

        await wait_until(paused, 15, what="the tenant paused by the judge")
        tenant = await _tenant(harness)
        assert tenant["pause_cause"] == "bounce_rate"
        assert "bounce rate" in str(tenant["pause_note"])

        # New mail: 451 4.7.1, saying why.
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            await harness.send(["new@example.com"])
        assert refused.value.smtp_code == 451
        assert refused.value.smtp_error.startswith(b"4.7.1")
        assert b"paused for review" in refused.value.smtp_error

        # The queued one is kept and not tried while paused, though its destination is up.
        before = (await harness.recipients("wait@slow.example"))[0]
        slow.mode = "normal"
        tried = slow.connections
        await asyncio.sleep(3)  # past its 1 s retry more than twice
        row = (await harness.recipients("wait@slow.example"))[0]
        assert row.status is Status.DEFERRED
        assert row.attempts == before.attempts
        assert slow.connections == tried

        # An event, a webhook, the gauge.
        events = await gw.store.events_for("", "default", 10)
        assert [e.reason for e in events if e.type is EventType.TENANT_PAUSED] == [
            Reason.BOUNCE_RATE
        ]
        await wait_until(
            lambda: any(json.loads(r.body)["type"] == "tenant_paused" for r in hooks.requests),
            10,
            what="the tenant_paused webhook",
        )
        await gw.metrics.refresh_gauges(gw.store)
        assert await metric(harness, "gateway_tenant_paused", tenant="default") == 1

        # Resumed by an admin, with a note: audited, the queue flows, new mail accepted.
        resumed = await admin(
            harness,
            "PATCH",
            "/api/v1/tenants/default",
            json={"paused": False, "note": "list cleaned, ticket 9"},
        )
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["tenant"]["paused"] is False
        await harness.wait_status("wait@slow.example", Status.SENT, timeout=15)
        assert await harness.send(["ok@example.com"]) == {}
        await harness.wait_status("ok@example.com", Status.SENT, timeout=15)
        entries = await gw.store.list_audit(20, None)
        resume = [e for e in entries if e.action == "tenant.resume"]
        assert [e.detail.get("note") for e in resume] == ["list cleaned, ticket 9"]
        await gw.metrics.refresh_gauges(gw.store)
        assert await metric(harness, "gateway_tenant_paused", tenant="default") == 0
        # The judge counts only what came after the resume: still running a pass later.
        await asyncio.sleep(2)
        assert (await _tenant(harness))["paused"] is False
        assert any(m.rcpt_tos == ("ok@example.com",) for m in mx.messages)


async def test_a_manual_pause_keeps_delivery_when_configured(
    store_section: dict[str, Any], harness: GatewayHarness
) -> None:
    harness.mx("127.0.0.2", "example.com")
    gw = await harness.start(admin=ADMIN, policy={"sweep_interval": "1s"}, store=store_section)
    patched = await admin(
        harness,
        "PATCH",
        "/api/v1/tenants/default",
        json={"paused": True, "note": "investigating", "pause_delivery": False},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()["tenant"]
    assert body["paused"] is True
    assert body["pause_cause"] == "manual"
    assert body["pause_note"] == "investigating"
    assert body["pause_delivery"] is False
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        await harness.send(["new@example.com"])
    assert refused.value.smtp_code == 451
    events = await gw.store.events_for("", "default", 10)
    assert [e.reason for e in events if e.type is EventType.TENANT_PAUSED] == [
        Reason.PAUSED_BY_ADMIN
    ]
    # A note alone explains nothing to pause or resume: the tenant stays paused, the note goes
    # to the audit log (tests/admin/test_admin_tenants.py).
    alone = await admin(harness, "PATCH", "/api/v1/tenants/default", json={"note": "alone"})
    assert alone.status_code == 200, alone.text
    assert alone.json()["tenant"]["paused"] is True
    assert alone.json()["tenant"]["pause_note"] == "investigating"
    bad = await admin(harness, "PATCH", "/api/v1/tenants/default", json={"hold_window": "7x"})
    assert bad.status_code == 422, bad.text
    assert "hold_window" in bad.text


async def test_a_pause_stops_the_mail_the_relay_already_holds(
    store_section: dict[str, Any], harness: GatewayHarness, tmp_path: Path
) -> None:
    """Mail claimed before the pause, waiting in the relay's ready queue for its site (one
    connection, a slow destination), is not tried once the tenant is paused: it goes back to
    the store untried, and is delivered once, each message exactly once, after the resume."""
    mx = harness.mx("127.0.0.2", "example.com")
    mx.slow_delay = 0.5  # slow-* recipients: half a second before the RCPT reply
    shaping = tmp_path / "shaping.toml"  # one connection per site: the rest wait their turn
    shaping.write_text("[default]\nconnections = 1\ninitial_connections = 1\n")
    await harness.start(admin=ADMIN, relay={"shaping": str(shaping)}, store=store_section)
    rcpts = [f"slow-{n}@example.com" for n in range(8)]
    for rcpt in rcpts:
        await harness.send([rcpt])
    await wait_until(lambda: len(mx.messages) >= 1, 15, what="the first delivery")
    paused = await admin(
        harness, "PATCH", "/api/v1/tenants/default", json={"paused": True, "note": "storm"}
    )
    assert paused.status_code == 200, paused.text
    # The pause reaches the relay within its gate's second; a transaction already under way
    # ends. Then nothing more is tried: a bounded look, as there is no signal for "nothing".
    await asyncio.sleep(2.0)
    at_pause = len(mx.messages)
    await asyncio.sleep(2.0)
    assert len(mx.messages) == at_pause < len(rcpts)
    waiting = [r for rcpt in rcpts for r in await harness.recipients(rcpt)]
    untried = [r for r in waiting if r.status is Status.QUEUED]
    assert len(untried) == len(rcpts) - at_pause
    assert all(r.attempts == 0 for r in untried)  # given back, no attempt burnt
    resumed = await admin(
        harness, "PATCH", "/api/v1/tenants/default", json={"paused": False, "note": "ok"}
    )
    assert resumed.status_code == 200, resumed.text
    await wait_until(lambda: len(mx.messages) >= len(rcpts), 30, what="the rest delivered")
    delivered = sorted(rcpt for m in mx.messages for rcpt in m.rcpt_tos)
    assert delivered == sorted(rcpts)  # each once
