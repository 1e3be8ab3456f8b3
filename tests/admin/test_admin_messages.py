"""Messages: listing with filters and cursors, detail, hold/release/delete."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import Category, EventType, Status
from tests.admin.support import Env, auth


async def test_list_filters_and_paginates_with_an_opaque_cursor(env: Env) -> None:
    for i in range(5):
        await env.seed(f"user{i}@example.com", status=Status.SENT, category=Category.DELIVERED)
        env.clock.advance(timedelta(seconds=1))
    await env.seed("bad@example.com")
    seen, cursor = [], None
    while True:
        url = "/api/v1/messages?limit=2&status=sent" + (f"&cursor={cursor}" if cursor else "")
        page = (await env.client.get(url, headers=auth())).json()
        seen += [m["recipients"][0]["address"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"user{i}@example.com" for i in reversed(range(5))]
    bounced = (
        await env.client.get("/api/v1/messages?category=nonexistent_address", headers=auth())
    ).json()
    assert [m["recipients"][0]["address"] for m in bounced["items"]] == ["bad@example.com"]
    one = (
        await env.client.get("/api/v1/messages?recipient=USER3@example.com", headers=auth())
    ).json()
    assert len(one["items"]) == 1
    later = env.clock.now().isoformat()
    last = await env.client.get(
        "/api/v1/messages", params={"since": later, "tenant": "default"}, headers=auth()
    )
    assert len(last.json()["items"]) == 1  # only the last one, received at "now"


async def test_list_rejects_bad_filters(env: Env) -> None:
    for query in ("status=nope", "category=nope", "since=yesterday", "cursor=!!!", "limit=x"):
        r = await env.client.get(f"/api/v1/messages?{query}", headers=auth())
        assert r.status_code == 422, query


async def test_message_detail_has_envelope_recipients_and_attempts(env: Env) -> None:
    queue_id = await env.seed("ana@example.com")
    body = (await env.client.get(f"/api/v1/messages/{queue_id}", headers=auth())).json()
    assert body["mail_from"] == "billing@app.test"
    assert body["subject"] == "Invoice"
    [rcpt] = body["recipients"]
    assert rcpt["status"] == "bounced"
    assert rcpt["attempts"] == 1
    assert [a["type"] for a in rcpt["attempts_detail"]] == ["bounced"]
    assert [e["type"] for e in rcpt["events"]] == ["queued", "bounced"]
    r = await env.client.get("/api/v1/messages/NOPE", headers=auth())
    assert r.status_code == 404


async def test_hold_skips_the_relay_and_release_makes_it_due(env: Env) -> None:
    queue_id = await env.seed("ana@example.com", status=Status.QUEUED)
    r = await env.client.post(f"/api/v1/messages/{queue_id}/hold", headers=auth())
    assert r.status_code == 200
    assert r.json() == {"queue_id": queue_id, "held": True, "recipients": 1}
    later = env.clock.now() + timedelta(hours=1)
    assert await env.store.claim_due(later, 10, "n", timedelta(minutes=1)) == []
    [view] = await env.store.recipients_of(queue_id)
    assert view.status is Status.HELD
    r = await env.client.post(f"/api/v1/messages/{queue_id}/release", headers=auth())
    assert r.json()["held"] is False
    assert env.woken  # the relay was told
    [view] = await env.store.recipients_of(queue_id)
    assert view.status is Status.QUEUED
    claimed = await env.store.claim_due(later, 10, "n", timedelta(minutes=1))
    assert [d.queue_id for d in claimed] == [queue_id]
    kinds = [e.type for e in await env.store.events_of_message(queue_id)]
    assert EventType.HELD in kinds
    assert EventType.RELEASED in kinds


async def test_hold_of_a_finished_message_is_409(env: Env) -> None:
    queue_id = await env.seed("ana@example.com")
    r = await env.client.post(f"/api/v1/messages/{queue_id}/hold", headers=auth())
    assert r.status_code == 409
    assert (await env.client.post("/api/v1/messages/NOPE/hold", headers=auth())).status_code == 404
    assert (
        await env.client.post("/api/v1/messages/NOPE/release", headers=auth())
    ).status_code == 404


async def test_delete_ends_pending_recipients_and_keeps_history(env: Env) -> None:
    queue_id = await env.seed("ana@example.com", status=Status.DEFERRED, category=None, code=451)
    r = await env.client.delete(f"/api/v1/messages/{queue_id}", headers=auth())
    assert r.status_code == 200
    assert r.json()["recipients"] == 1
    [view] = await env.store.recipients_of(queue_id)
    assert view.status is Status.EXPIRED
    assert await env.store.load_content(queue_id) is None
    events = await env.store.events_of_message(queue_id)
    assert [e.type for e in events] == [EventType.QUEUED, EventType.DEFERRED, EventType.EXPIRED]
    assert events[-1].reason == "deleted_by_admin"
    assert (
        await env.client.delete(f"/api/v1/messages/{queue_id}", headers=auth())
    ).status_code == 409
    assert (await env.client.delete("/api/v1/messages/NOPE", headers=auth())).status_code == 404
