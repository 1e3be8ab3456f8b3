"""A hostile value comes out escaped on every page that shows it: the support page (search
form, status card, refusal, suppression with its note and its unblock form, timeline, typo
warning), the suppression list, the login form's ``next`` and the public unsubscribe pages.

The pages are Jinja2 templates with autoescaping (``admin.templating``): text and attribute
values alike. The value closes an attribute and opens a tag, so it fails if it lands raw in
either place.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from markupsafe import escape

from gateway.core import replies
from gateway.core.model import Event, EventType, Reason, Suppression, SuppressionReason
from gateway.core.verp import make_unsubscribe_token
from tests.admin.support import SECRET, TOKEN, Env, auth

EVIL = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>"
#: Filed as typed: it never parses as an address, like an intake refusal of bad syntax.
EVIL_ADDRESS = f"{EVIL}@example.com"


def assert_escaped(page: httpx.Response) -> None:
    assert page.status_code == 200, page.text[:300]
    assert page.headers["content-type"].startswith("text/html")
    assert "<script>alert(1)" not in page.text
    assert "<img src=x" not in page.text
    assert "\"'>" not in page.text
    assert str(escape(EVIL)) in page.text


async def _hostile_history(env: Env) -> None:
    """A refusal, a bounce, a typo warning and a suppression, each carrying the value."""
    reply = replies.RECIPIENT_TYPO.with_text(f"did you mean {EVIL}?")
    await env.record_refusal(EVIL_ADDRESS, Reason.INVALID, reply, {"suggestion": EVIL})
    env.clock.advance(timedelta(seconds=1))
    await env.seed("ana@example.com", text=EVIL, host=EVIL)
    env.clock.advance(timedelta(seconds=1))
    await env.store.record_event(
        Event(
            None,
            "default",
            "ana@example.com",
            EventType.POSSIBLE_TYPO,
            env.clock.now(),
            reason=Reason.POSSIBLE_TYPO,
            details={"suggestion": EVIL},
        )
    )
    await env.store.add_suppression(
        Suppression(
            "default",
            EVIL_ADDRESS,
            SuppressionReason.MANUAL,
            env.clock.now(),
            note=EVIL,
        )
    )


@pytest.mark.parametrize("lang", ["pt-BR", "en"])
async def test_support_page_escapes_what_it_shows(env: Env, lang: str) -> None:
    await _hostile_history(env)
    # The suppressed address: the card, the suppression's note, the unblock form's fields
    # (shown to a logged-in session, which has a CSRF token for the form).
    login = await env.client.post("/login", data={"token": TOKEN})
    assert login.status_code == 303
    page = await env.client.get(
        "/support", params={"address": EVIL_ADDRESS, "tenant": "", "lang": lang}
    )
    assert_escaped(page)
    assert 'action="/support/unblock"' in page.text
    assert f'name="address" value="{escape(EVIL_ADDRESS)}"' in page.text
    # The refused address with its reply, searched in another tenant's name (the search
    # form shows the tenant back).
    page = await env.client.get(
        "/support", params={"address": "ana@example.com", "tenant": EVIL, "lang": lang},
        headers=auth(),
    )  # fmt: skip
    assert_escaped(page)
    # The bounce's reply, its remote host and the typo warning beside the status.
    page = await env.client.get(
        "/support", params={"address": "ana@example.com", "lang": lang}, headers=auth()
    )
    assert_escaped(page)
    assert page.text.count(str(escape(EVIL))) >= 3  # reply, host, suggestion
    assert f'data-suggestion="{escape(EVIL)}"' in page.text


async def test_refusal_reply_is_escaped(env: Env) -> None:
    await env.record_refusal(
        "bad@example.com", Reason.INVALID, replies.RECIPIENT_TYPO.with_text(EVIL)
    )
    page = await env.client.get("/support", params={"address": "bad@example.com"}, headers=auth())
    assert 'data-status="rejected"' in page.text
    assert_escaped(page)


async def test_suppression_list_escapes_address_note_and_filter(env: Env) -> None:
    await _hostile_history(env)
    page = await env.client.get("/support/suppressions", headers=auth())
    assert_escaped(page)
    assert page.text.count(str(escape(EVIL))) >= 2  # the address and the note
    page = await env.client.get("/support/suppressions", params={"tenant": EVIL}, headers=auth())
    assert_escaped(page)


async def test_login_form_escapes_next(env: Env) -> None:
    page = await env.client.get("/login", params={"next": f"/support?address={EVIL}"})
    assert_escaped(page)
    index = await env.client.get("/", params={"x": EVIL}, headers=auth())
    assert index.status_code == 200
    assert "<script>alert(1)" not in index.text


async def test_public_pages_escape_the_address(env: Env) -> None:
    address = f"x@{EVIL}"
    token = make_unsubscribe_token("acme", address, SECRET.encode())
    assert_escaped(await env.public.get(f"/u/{token}"))
    done = await env.public.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert_escaped(done)
    assert await env.store.find_suppression("acme", address, env.clock.now()) is not None


async def test_page_keeps_its_nonce_and_csp(env: Env) -> None:
    """The one inline script carries the nonce the CSP names; a fresh one each time."""
    seen = set()
    for _ in range(2):
        page = await env.client.get("/", headers=auth())
        csp = page.headers["content-security-policy"]
        nonce = csp.split("'nonce-", 1)[1].split("'", 1)[0]
        assert f'<script nonce="{nonce}">' in page.text
        assert page.text.count("<script") == 1
        assert "default-src 'none'" in csp
        seen.add(nonce)
    assert len(seen) == 2
