"""The support page: login, search, status card in both languages, escaping, unblock."""

from __future__ import annotations

import re

import httpx
from markupsafe import escape  # what the templates' autoescaping produces

from gateway.core.model import Category, Event, EventType, Status, Suppression, SuppressionReason
from gateway.core.status_text import guidance
from tests.admin.support import RO_TOKEN, TOKEN, Env, auth


async def _login(client: httpx.AsyncClient, token: str = TOKEN) -> None:
    r = await client.post("/login", data={"token": token, "lang": "pt-BR"})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie


async def test_login_form_then_search(env: Env) -> None:
    first = await env.client.get("/")
    assert first.status_code == 303
    assert first.headers["location"] == "/login?lang=pt-BR"
    page = await env.client.get(first.headers["location"])
    assert page.status_code == 200
    assert 'name="token"' in page.text
    bad = await env.client.post("/login", data={"token": "wrong"})
    assert bad.status_code == 401
    assert "gw_session" not in bad.headers.get("set-cookie", "")
    await _login(env.client)
    page = await env.client.get("/")
    assert 'action="/support"' in page.text
    assert "nonce-" in page.headers["content-security-policy"]


async def test_support_page_requires_login(env: Env) -> None:
    r = await env.client.get("/support?address=a@example.com")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/")


async def test_status_card_customer_message_and_events_pt_and_en(env: Env) -> None:
    await env.seed(
        "ana@example.com",
        category=Category.MAILBOX_FULL,
        code=552,
        enhanced="5.2.2",
        text="Mailbox full",
    )
    await _login(env.client)
    pt = await env.client.get("/support", params={"address": "ana@example.com"})
    g = guidance(Status.BOUNCED, Category.MAILBOX_FULL)
    assert escape(g.title) in pt.text
    assert escape(g.customer_message) in pt.text
    assert 'data-copy="customer-message"' in pt.text
    assert "552 5.2.2 Mailbox full" in pt.text
    assert 'lang="pt-BR"' in pt.text
    en = await env.client.get("/support", params={"address": "ana@example.com", "lang": "en"})
    g_en = guidance(Status.BOUNCED, Category.MAILBOX_FULL, lang="en")
    assert escape(g_en.what_to_do) in en.text
    assert "Message for the customer" in en.text
    unknown = await env.client.get("/support", params={"address": "nobody@example.com"})
    assert "não tem registro" in unknown.text


async def test_everything_shown_is_escaped(env: Env) -> None:
    evil = "<script>alert(1)</script>"
    await env.store.record_event(
        Event(
            None,
            "default",
            "x@example.com",
            EventType.REJECTED,
            env.clock.now(),
            reply_code=550,
            enhanced="5.7.1",
            text=evil,
        )
    )
    r = await env.client.get(
        "/support", params={"address": "x@example.com", "tenant": evil}, headers=auth()
    )
    assert evil not in r.text
    assert escape(evil) in r.text or "&lt;script&gt;" in r.text


async def test_unblock_button_needs_csrf_and_records_the_event(env: Env) -> None:
    await env.store.add_suppression(
        Suppression(
            "default", "bob@example.com", SuppressionReason.REPEATED_FAILURES, env.clock.now()
        )
    )
    await _login(env.client)
    page = await env.client.get("/support", params={"address": "bob@example.com"})
    assert 'action="/support/unblock"' in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    form = {
        "address": "bob@example.com",
        "tenant": "default",
        "reason": "ticket 7",
        "lang": "pt-BR",
    }
    forged = await env.client.post("/support/unblock", data=form | {"csrf": "0" * 32})
    assert forged.status_code == 403
    ok = await env.client.post("/support/unblock", data=form | {"csrf": csrf.group(1)})
    assert ok.status_code == 303
    assert await env.store.find_suppression("default", "bob@example.com", env.clock.now()) is None
    [event] = await env.store.events_for("bob@example.com", None, 5)
    assert event.type is EventType.UNSUPPRESSED
    assert event.details["ticket"] == "ticket 7"


async def test_read_only_login_sees_no_unblock_button(env: Env) -> None:
    await env.store.add_suppression(
        Suppression("default", "bob@example.com", SuppressionReason.MANUAL, env.clock.now())
    )
    await _login(env.client, RO_TOKEN)
    page = await env.client.get("/support", params={"address": "bob@example.com"})
    assert "bloqueio manual" in page.text
    assert 'action="/support/unblock"' not in page.text


async def test_suppression_list_page_and_logout(env: Env) -> None:
    await env.store.add_suppression(
        Suppression("acme", "z@example.com", SuppressionReason.OPT_OUT, env.clock.now())
    )
    await _login(env.client)
    page = await env.client.get("/support/suppressions", params={"reason": "opt_out", "lang": "en"})
    assert "z@example.com" in page.text
    assert "opt-out" in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    out = await env.client.post("/logout", data={"csrf": csrf.group(1)})
    assert out.status_code == 303
    assert (await env.client.get("/support?address=z@example.com")).status_code == 303
