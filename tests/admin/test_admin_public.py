"""The public listener: RFC 8058 one-click unsubscribe, never on GET, tokens verified."""

from __future__ import annotations

from gateway.core.model import EventType, Suppression, SuppressionReason
from gateway.core.verp import make_unsubscribe_token
from tests.admin.support import SECRET, Env

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def test_one_click_post_suppresses_with_opt_out(env: Env) -> None:
    token = make_unsubscribe_token("acme", "ana@example.com", SECRET.encode())
    r = await env.public.post(f"/u/{token}", data=ONE_CLICK)
    assert r.status_code == 200
    found = await env.store.find_suppression("acme", "ana@example.com", env.clock.now())
    assert found is not None
    assert found.reason is SuppressionReason.OPT_OUT
    [event] = await env.store.events_for("ana@example.com", "acme", 5)
    assert event.type is EventType.SUPPRESSED
    assert event.reason == "opt_out"
    assert "set-cookie" not in r.headers


async def test_multipart_one_click_is_accepted(env: Env) -> None:
    token = make_unsubscribe_token("acme", "ana@example.com", SECRET.encode())
    r = await env.public.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200


async def test_get_shows_a_button_and_changes_nothing(env: Env) -> None:
    token = make_unsubscribe_token("acme", "ana@example.com", SECRET.encode())
    r = await env.public.get(f"/u/{token}")
    assert r.status_code == 200
    assert '<form method="post">' in r.text
    assert "ana@example.com" not in r.text  # masked
    assert await env.store.find_suppression("acme", "ana@example.com", env.clock.now()) is None


async def test_tampered_or_foreign_token_changes_nothing(env: Env) -> None:
    token = make_unsubscribe_token("acme", "ana@example.com", SECRET.encode())
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    foreign = make_unsubscribe_token("acme", "ana@example.com", b"another-secret-123456")
    for bad in (tampered, foreign, "not-a-token!"):
        r = await env.public.post(f"/u/{bad}", data=ONE_CLICK)
        assert r.status_code == 404
        assert (await env.public.get(f"/u/{bad}")).status_code == 404
    assert await env.store.active_suppressions("ana@example.com", None, env.clock.now()) == []


async def test_post_without_the_one_click_body_is_400(env: Env) -> None:
    token = make_unsubscribe_token("acme", "ana@example.com", SECRET.encode())
    r = await env.public.post(f"/u/{token}", data={"List-Unsubscribe": "nope"})
    assert r.status_code == 400
    assert await env.store.find_suppression("acme", "ana@example.com", env.clock.now()) is None


async def test_opt_out_does_not_overwrite_a_complaint(env: Env) -> None:
    await env.store.add_suppression(
        Suppression("acme", "ana@example.com", SuppressionReason.COMPLAINT, env.clock.now())
    )
    token = make_unsubscribe_token("acme", "ana@example.com", SECRET.encode())
    assert (await env.public.post(f"/u/{token}", data=ONE_CLICK)).status_code == 200
    found = await env.store.find_suppression("acme", "ana@example.com", env.clock.now())
    assert found is not None
    assert found.reason is SuppressionReason.COMPLAINT


async def test_public_app_has_no_admin_routes(env: Env) -> None:
    assert (await env.public.get("/api/v1/tenants")).status_code == 404
    assert (await env.public.get("/")).status_code == 404
    assert (await env.public.get("/healthz")).status_code == 200
