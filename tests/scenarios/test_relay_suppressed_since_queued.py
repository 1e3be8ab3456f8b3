"""A recipient whose address is suppressed while it waits for a retry is not tried again
(issue 13, item 6).

The destination answers ``421`` at the greeting, so the recipient is deferred; the address
is then suppressed — by an admin through the API, or by the hash an erasure left behind —
and the destination starts accepting mail. The next attempt must not reach it: the relay
checks the claimed batch against the suppression list, and the recipient ends
``suppressed`` with the suppression's reason, visible through the admin API and sent to the
tenant's webhook like every other event.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from gateway.core.model import EventType, Status, Suppression, SuppressionReason
from gateway.core.records import hashed_address
from tests.observability.receiver import Receiver
from tests.scenarios.admin_api import ADMIN, admin, recipient
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until

RETRY = "2s"  # the next attempt comes well after the suppression is committed
WEBHOOKS = {"allow_private_targets": True, "retry_intervals": ["1s"]}


async def test_an_address_blocked_by_an_admin_while_deferred_is_not_tried_again(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    mx.mode = "greeting421"
    async with Receiver() as hooks:
        gw = await harness.start(
            serve_only=True, relay={"retry_intervals": [RETRY]}, admin=ADMIN, webhooks=WEBHOOKS
        )
        await gw.store.set_webhook("default", hooks.url, "whsec_scenario")
        gw.tenants.invalidate()  # as the admin API does after a change: seen at once
        harness.run()
        assert await harness.send(["kate@example.com"]) == {}
        deferred = await harness.wait_status("kate@example.com", Status.DEFERRED)
        assert deferred.attempts == 1
        tried = mx.connections
        assert tried >= 1

        blocked = await admin(
            harness,
            "POST",
            "/api/v1/suppressions",
            json={"address": "kate@example.com", "note": "the customer asked"},
        )
        assert blocked.status_code == 201, blocked.text
        mx.mode = "normal"  # from now on, an attempt that reached the MX would deliver

        row = await harness.wait_status("kate@example.com", Status.SUPPRESSED, timeout=15)
        # Past the next retry time as well: nothing was sent, no connection was made.
        await asyncio.sleep(2.5)
        assert mx.messages == []
        assert mx.connections == tried
        assert row.attempts == 1
        assert row.due_at is None

        body = await recipient(harness, "kate@example.com")
        assert body["status"] == "suppressed"
        assert body["reason"] == SuppressionReason.MANUAL.value
        assert body["recipient"]["status"] == Status.SUPPRESSED.value
        assert body["recipient"]["queue_id"] == row.queue_id
        assert "manual" in body["recipient"]["last_reply"]
        cancelled = [
            e
            for e in body["events"]
            if e["type"] == "suppressed" and e["recipient_id"] == row.recipient_id
        ]
        assert len(cancelled) == 1
        assert cancelled[0]["reason"] == SuppressionReason.MANUAL.value
        assert cancelled[0]["queue_id"] == row.queue_id

        # The webhook, from the events log like every other outcome.
        def payloads() -> list[dict[str, Any]]:
            return [json.loads(r.body) for r in hooks.requests]

        def suppressed_hooks() -> list[dict[str, Any]]:
            return [
                p for p in payloads() if p["type"] == "suppressed" and p["queue_id"] is not None
            ]

        (hook,) = await wait_until(suppressed_hooks, 10, what="a suppressed webhook")
        assert hook["recipient"] == "kate@example.com"
        assert hook["queue_id"] == row.queue_id
        assert hook["status"] == Status.SUPPRESSED.value
        assert hook["reason"] == SuppressionReason.MANUAL.value
        assert "deferred" in [p["type"] for p in payloads()]


async def test_the_hash_an_erasure_left_stops_the_next_attempt_too(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    mx.mode = "greeting421"
    gw = await harness.start(relay={"retry_intervals": [RETRY]}, admin=ADMIN)
    assert await harness.send(["lara@example.com"]) == {}
    await harness.wait_status("lara@example.com", Status.DEFERRED)
    tried = mx.connections

    # An erasure keeps an active suppression only as the address's hash (the intake then
    # refuses the address by that hash); a recipient queued in the same instant is not
    # hashed with the others and must be stopped by it all the same.
    key = hashed_address("lara@example.com")
    now = datetime.now(UTC)
    await gw.store.add_suppression(
        Suppression("default", key, SuppressionReason.NONEXISTENT_ADDRESS, now)
    )
    mx.mode = "normal"

    row = await harness.wait_status("lara@example.com", Status.SUPPRESSED, timeout=15)
    await asyncio.sleep(2.5)
    assert mx.messages == []
    assert mx.connections == tried
    (event,) = [
        e
        for e in await harness.events("lara@example.com")
        if e.recipient_id == row.recipient_id and e.type is EventType.SUPPRESSED
    ]
    assert event.reason == SuppressionReason.NONEXISTENT_ADDRESS.value
    body = await recipient(harness, "lara@example.com")
    assert body["recipient"]["status"] == Status.SUPPRESSED.value
    assert body["status"] == "suppressed"
    assert body["reason"] == SuppressionReason.NONEXISTENT_ADDRESS.value


async def test_a_suppression_in_another_tenant_does_not_stop_delivery(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    mx.mode = "greeting421"
    gw = await harness.start(relay={"retry_intervals": [RETRY]}, admin=ADMIN)
    assert await harness.send(["mona@example.com"]) == {}
    await harness.wait_status("mona@example.com", Status.DEFERRED)

    now = datetime.now(UTC)
    await gw.store.add_suppression(
        Suppression("another", "mona@example.com", SuppressionReason.MANUAL, now)
    )
    mx.mode = "normal"

    (received,) = await mx.wait_for(1, timeout=15)
    assert received.rcpt_tos == ("mona@example.com",)
    row = await harness.wait_status("mona@example.com", Status.SENT)
    assert row.attempts == 2
