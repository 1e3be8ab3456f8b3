"""GET /api/v1/recipients/{address}: status, suppression, events, guidance in two languages."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import (
    Category,
    EventType,
    Status,
    Suppression,
    SuppressionReason,
)
from gateway.core.status_text import guidance
from tests.admin.support import RO_TOKEN, Env, auth


async def test_bounced_address_has_guidance_in_portuguese_by_default(env: Env) -> None:
    await env.seed("ana@example.com", text="5.1.1 User unknown", host="mx.example.com")
    r = await env.client.get("/api/v1/recipients/ana@example.com", headers=auth(RO_TOKEN))
    assert r.status_code == 200
    body = r.json()
    expected = guidance(Status.BOUNCED, Category.NONEXISTENT_ADDRESS)
    assert body["status"] == "bounced"
    assert body["category"] == "nonexistent_address"
    assert body["guidance"] == {
        "lang": "pt-BR",
        "title": expected.title,
        "what_to_do": expected.what_to_do,
        "customer_message": expected.customer_message,
    }
    assert body["suppression"] is None
    [event, queued] = body["events"]
    assert event["type"] == "bounced"
    assert event["reply"] == "550 5.1.1 5.1.1 User unknown"
    assert event["remote_host"] == "mx.example.com"
    assert event["queue_id"] == queued["queue_id"]


async def test_english_with_lang_en(env: Env) -> None:
    await env.seed("ana@example.com", category=Category.MAILBOX_FULL, code=552, enhanced="5.2.2")
    r = await env.client.get("/api/v1/recipients/ana@example.com?lang=en", headers=auth())
    expected = guidance(Status.BOUNCED, Category.MAILBOX_FULL, lang="en")
    assert r.json()["guidance"]["title"] == expected.title
    assert r.json()["guidance"]["lang"] == "en"
    assert r.json()["category_label"] == "mailbox full"


async def test_case_and_spaces_are_canonicalised(env: Env) -> None:
    await env.seed("ana@example.com")
    r = await env.client.get("/api/v1/recipients/%20Ana@EXAMPLE.com", headers=auth())
    assert r.status_code == 200
    assert r.json()["address"] == "ana@example.com"


async def test_active_suppression_wins_and_names_its_cause(env: Env) -> None:
    await env.seed("bob@example.com")
    [event] = [
        e
        for e in await env.store.events_for("bob@example.com", None, 10)
        if e.type is EventType.BOUNCED
    ]
    await env.store.add_suppression(
        Suppression(
            "default",
            "bob@example.com",
            SuppressionReason.NONEXISTENT_ADDRESS,
            env.clock.now(),
            None,
            event.event_id,
            "nonexistent_address: user unknown",
        )
    )
    r = await env.client.get("/api/v1/recipients/bob@example.com", headers=auth())
    body = r.json()
    assert body["status"] == "suppressed"
    assert body["reason"] == "nonexistent_address"
    assert body["suppression"]["cause"]["id"] == event.event_id
    assert body["suppression"]["cause"]["reply"].startswith("550 5.1.1")
    assert (
        body["guidance"]["title"] == guidance(Status.SUPPRESSED, reason="nonexistent_address").title
    )


async def test_expired_suppression_is_not_shown(env: Env) -> None:
    await env.seed("bob@example.com", status=Status.SENT, category=Category.DELIVERED)
    await env.store.add_suppression(
        Suppression(
            "default",
            "bob@example.com",
            SuppressionReason.REPEATED_FAILURES,
            env.clock.now() - timedelta(days=10),
            env.clock.now() - timedelta(days=1),
        )
    )
    body = (await env.client.get("/api/v1/recipients/bob@example.com", headers=auth())).json()
    assert body["status"] == "sent"
    assert body["suppressions"] == []


async def test_rejected_at_intake_shows_the_refusal(env: Env) -> None:
    await env.record_typo_refusal()
    body = (
        await env.client.get("/api/v1/recipients/maria@gmial.com?lang=en", headers=auth())
    ).json()
    assert body["status"] == "rejected"
    assert body["reason"] == "typo"
    assert body["rejection"]["reply"].startswith("553 5.1.3")
    assert body["guidance"]["title"] == guidance(Status.REJECTED, reason="typo", lang="en").title


async def test_tenant_filter_and_unknown_address(env: Env) -> None:
    await env.seed("carl@example.com", tenant="acme")
    ok = await env.client.get("/api/v1/recipients/carl@example.com?tenant=acme", headers=auth())
    assert ok.status_code == 200
    other = await env.client.get(
        "/api/v1/recipients/carl@example.com?tenant=default", headers=auth()
    )
    # No record in that tenant: an answer, not an error (issue 16 item 1).
    assert other.status_code == 200
    assert other.json()["status"] == "no_record"
    assert other.json()["tenant_activity"]["tenant"] == "default"
