"""Erasure of an address (LGPD) and the janitor's retention passes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.core.model import Category, Status, Suppression, SuppressionReason
from gateway.core.records import hashed_address
from gateway.services.retention import JanitorSettings, run_janitor, run_pass
from tests.admin.support import Env, auth


async def test_erasure_keeps_only_a_hashed_suppression(env: Env) -> None:
    done = await env.seed("ana@example.com")
    pending = await env.seed("ana@example.com", status=Status.QUEUED)
    await env.store.add_suppression(
        Suppression(
            "default", "ana@example.com", SuppressionReason.NONEXISTENT_ADDRESS, env.clock.now()
        )
    )
    r = await env.client.delete("/api/v1/addresses/Ana@example.com/data", headers=auth())
    assert r.status_code == 200
    body = r.json()
    key = hashed_address("ana@example.com")
    assert body["address_hash"] == key
    assert body["events_deleted"] == 3  # queued, bounced, queued
    assert body["recipients_cancelled"] == 1
    assert body["suppressions_kept_hashed"] == 1
    assert await env.store.events_for("ana@example.com", None, 10) == []
    assert await env.store.find_suppression("default", "ana@example.com", env.clock.now()) is None
    hashed = await env.store.find_hashed_suppression("default", "ana@example.com", env.clock.now())
    assert hashed is not None
    assert hashed.address == key
    assert hashed.reason is SuppressionReason.NONEXISTENT_ADDRESS
    for queue_id in (done, pending):
        [view] = await env.store.recipients_of(queue_id)
        assert view.address == key
        assert await env.store.load_content(queue_id) is None
    # The report still says "blocked" when support looks the address up again.
    report = (await env.client.get("/api/v1/recipients/ana@example.com", headers=auth())).json()
    assert report["status"] == "suppressed"
    assert report["suppression"]["hashed"] is True
    # And the unblock lifts the hashed row too.
    r = await env.client.delete("/api/v1/suppressions/ana@example.com?reason=T-9", headers=auth())
    assert r.status_code == 200
    assert (
        await env.store.find_hashed_suppression("default", "ana@example.com", env.clock.now())
        is None
    )
    audit = (await env.client.get("/api/v1/audit", headers=auth())).json()["items"]
    erase = next(a for a in audit if a["action"] == "address.erase")
    assert erase["target"] == key  # the audit trail does not hold the address in clear


async def test_janitor_deletes_content_and_old_events_in_batches(env: Env) -> None:
    old = await env.seed("old@example.com", status=Status.SENT, category=Category.DELIVERED)
    queued = await env.seed("wait@example.com", status=Status.QUEUED)
    env.clock.advance(env.deps.config.store.retain_content + timedelta(hours=1))
    fresh = await env.seed("new@example.com", status=Status.SENT, category=Category.DELIVERED)
    stopping = asyncio.Event()
    settings = JanitorSettings(batch=1, pause=0.0)
    result = await run_pass(env.store, env.deps.config, env.clock, stopping, settings)
    assert result.contents == 1
    assert await env.store.load_content(old) is None
    assert await env.store.load_content(queued) is not None  # still pending
    assert await env.store.load_content(fresh) is not None
    assert result.events == 0
    env.clock.advance(env.deps.config.store.retain_events)
    result = await run_pass(env.store, env.deps.config, env.clock, stopping, settings)
    assert result.events == 3  # old: queued + sent, wait: queued; the fresh ones are kept
    assert await env.store.events_for("old@example.com", None, 10) == []


async def test_run_janitor_stops_promptly(env: Env) -> None:
    stopping = asyncio.Event()
    task = asyncio.create_task(run_janitor(env.store, env.deps.config, env.clock, stopping))
    await asyncio.sleep(0.05)
    stopping.set()
    async with asyncio.timeout(5):
        await task
