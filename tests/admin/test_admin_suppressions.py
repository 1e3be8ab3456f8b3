"""Suppressions: list, manual block, and the audited unblock that resets the counter."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import EventType, Suppression, SuppressionReason
from tests.admin.support import Env, auth


def _block(tenant: str, address: str, reason: SuppressionReason, now) -> Suppression:
    return Suppression(tenant, address, reason, now)


async def test_manual_block_records_a_suppressed_event(env: Env) -> None:
    r = await env.client.post(
        "/api/v1/suppressions",
        json={"address": "Ana@Example.com", "tenant": "acme", "note": "ticket 42"},
        headers=auth(),
    )
    assert r.status_code == 201
    assert r.json()["reason"] == "manual"
    assert r.json()["address"] == "ana@example.com"
    found = await env.store.find_suppression("acme", "ana@example.com", env.clock.now())
    assert found is not None
    assert found.note == "ticket 42"
    [event] = await env.store.events_for("ana@example.com", "acme", 10)
    assert event.type is EventType.SUPPRESSED
    assert event.reason == "manual"
    assert found.event_id == event.event_id
    missing = await env.client.post(
        "/api/v1/suppressions", json={"address": "a@example.com", "tenant": "nope"}, headers=auth()
    )
    assert missing.status_code == 404


async def test_list_filters_and_paginates(env: Env) -> None:
    now = env.clock.now()
    for i in range(3):
        await env.store.add_suppression(
            _block("default", f"u{i}@example.com", SuppressionReason.COMPLAINT, now)
        )
    await env.store.add_suppression(_block("acme", "x@example.com", SuppressionReason.OPT_OUT, now))
    seen, cursor = [], None
    while True:
        url = "/api/v1/suppressions?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await env.client.get(url, headers=auth())).json()
        seen += [(s["tenant"], s["address"]) for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4
    only = (await env.client.get("/api/v1/suppressions?reason=opt_out", headers=auth())).json()
    assert [s["address"] for s in only["items"]] == ["x@example.com"]
    acme = (await env.client.get("/api/v1/suppressions?tenant=acme", headers=auth())).json()
    assert len(acme["items"]) == 1
    bad = await env.client.get("/api/v1/suppressions?reason=nope", headers=auth())
    assert bad.status_code == 422


async def test_unblock_requires_a_reason(env: Env) -> None:
    await env.store.add_suppression(
        _block("default", "a@example.com", SuppressionReason.MANUAL, env.clock.now())
    )
    r = await env.client.delete("/api/v1/suppressions/a@example.com", headers=auth())
    assert r.status_code == 422
    assert "reason" in r.json()["error"]["message"]


async def test_unblock_records_who_and_why_and_resets_the_counter(env: Env) -> None:
    await env.seed("a@example.com")
    await env.store.add_suppression(
        _block("default", "a@example.com", SuppressionReason.REPEATED_FAILURES, env.clock.now())
    )
    env.clock.advance(timedelta(minutes=5))
    r = await env.client.request(
        "DELETE",
        "/api/v1/suppressions/a@example.com",
        json={"reason": "ticket #981"},
        headers=auth(),
    )
    assert r.status_code == 200
    body = r.json()
    assert len(body["actor"]) == 8
    assert body["lifted"][0]["was"] == "repeated_failures"
    assert await env.store.find_suppression("default", "a@example.com", env.clock.now()) is None
    streak = await env.store.failure_streak(
        "default", "a@example.com", env.clock.now() - timedelta(days=1)
    )
    assert streak[0].type is EventType.UNSUPPRESSED  # newest first: the policy sees the reset
    assert streak[0].details["ticket"] == "ticket #981"
    assert streak[0].details["actor"] == body["actor"]
    audit = (await env.client.get("/api/v1/audit", headers=auth())).json()
    assert audit["items"][0]["action"] == "suppression.remove"


async def test_unblock_without_tenant_lifts_every_tenant_and_with_tenant_only_one(env: Env) -> None:
    now = env.clock.now()
    for tenant in ("default", "acme"):
        await env.store.add_suppression(
            _block(tenant, "a@example.com", SuppressionReason.MANUAL, now)
        )
    await env.store.add_suppression(_block("acme", "b@example.com", SuppressionReason.MANUAL, now))
    await env.store.add_suppression(
        _block("default", "b@example.com", SuppressionReason.MANUAL, now)
    )
    r = await env.client.delete("/api/v1/suppressions/a@example.com?reason=T-1", headers=auth())
    assert sorted(x["tenant"] for x in r.json()["lifted"]) == ["acme", "default"]
    r = await env.client.delete(
        "/api/v1/suppressions/b@example.com?reason=T-2&tenant=acme", headers=auth()
    )
    assert [x["tenant"] for x in r.json()["lifted"]] == ["acme"]
    assert await env.store.find_suppression("default", "b@example.com", now) is not None
    again = await env.client.delete("/api/v1/suppressions/a@example.com?reason=T-3", headers=auth())
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_suppressed"
