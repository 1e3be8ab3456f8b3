"""Tenant-scoped tokens (issue 16 item 2): made by an admin, shown once, stored hashed,
listed without the secret, revoked at once, audited; what such a token may do."""

from __future__ import annotations

import hashlib

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway.admin.app import _starlette_routes
from gateway.admin.auth import TokenAuth
from gateway.admin.errors import exception_handlers
from tests.admin.support import Env, auth


async def make_token(env: Env, tenant: str, access: str = "write") -> str:
    r = await env.client.post(
        f"/api/v1/tenants/{tenant}/tokens", json={"access": access, "note": "n"}, headers=auth()
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


async def test_a_token_is_shown_once_stored_hashed_listed_revoked_and_audited(env: Env) -> None:
    r = await env.client.post(
        "/api/v1/tenants/acme/tokens", json={"access": "read", "note": "help desk"}, headers=auth()
    )
    assert r.status_code == 201, r.text
    body = r.json()
    token, info = body["token"], body["info"]
    assert token.startswith("gwt_")
    assert len(token) > 40
    assert (info["tenant"], info["access"], info["note"]) == ("acme", "read", "help desk")
    stored = await env.store.list_tenant_tokens("acme")
    assert [t.token_id for t in stored] == [info["id"]]
    assert stored[0].digest == hashlib.sha256(token.encode()).hexdigest()
    listed = await env.client.get("/api/v1/tenants/acme/tokens", headers=auth())
    assert listed.status_code == 200
    assert token not in listed.text
    assert stored[0].digest not in listed.text
    assert listed.json()["items"][0]["id"] == info["id"]
    # The token works until revoked, then answers 401 at once.
    assert (await env.client.get("/api/v1/messages", headers=auth(token))).status_code == 200
    gone = await env.client.delete(f"/api/v1/tenants/acme/tokens/{info['id']}", headers=auth())
    assert gone.status_code == 200
    assert gone.json()["revoked"] is True
    assert (await env.client.get("/api/v1/messages", headers=auth(token))).status_code == 401
    again = await env.client.delete(f"/api/v1/tenants/acme/tokens/{info['id']}", headers=auth())
    assert again.status_code == 404
    actions = [
        (e.action, e.target) for e in await env.store.list_audit(10, None) if "token" in e.action
    ]
    assert actions == [("tenant.token.revoke", "acme"), ("tenant.token.create", "acme")]


async def test_token_routes_validate_and_need_an_admin(env: Env) -> None:
    bad = await env.client.post(
        "/api/v1/tenants/acme/tokens", json={"access": "admin"}, headers=auth()
    )
    assert bad.status_code == 422
    missing = await env.client.post(
        "/api/v1/tenants/nope/tokens", json={"access": "read"}, headers=auth()
    )
    assert missing.status_code == 404
    token = await make_token(env, "acme", "write")
    # A tenant token cannot mint, list or revoke tokens, not even its own tenant's.
    for method, path in (
        ("POST", "/api/v1/tenants/acme/tokens"),
        ("GET", "/api/v1/tenants/acme/tokens"),
        ("DELETE", "/api/v1/tenants/acme/tokens/x"),
        ("POST", "/api/v1/tenants"),
        ("PATCH", "/api/v1/tenants/acme"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/destinations"),
    ):
        r = await env.client.request(method, path, json={"access": "read"}, headers=auth(token))
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["code"] == "admin_only"


async def test_a_read_token_may_not_write(env: Env) -> None:
    await env.seed("ana@example.com", tenant="acme")
    token = await make_token(env, "acme", "read")
    r = await env.client.post(
        "/api/v1/suppressions",
        json={"address": "ana@example.com", "tenant": "acme"},
        headers=auth(token),
    )
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    writer = await make_token(env, "acme", "write")
    r = await env.client.post(
        "/api/v1/suppressions",
        json={"address": "ana@example.com", "tenant": "acme"},
        headers=auth(writer),
    )
    assert r.status_code == 201, r.text
    audit = [e for e in await env.store.list_audit(10, None) if e.action == "suppression.add"]
    assert audit[0].actor.startswith("tt-")


async def test_a_wrong_tenant_token_is_refused(env: Env) -> None:
    r = await env.client.get("/api/v1/messages", headers=auth("gwt_" + "x" * 43))
    assert r.status_code == 401


async def test_a_page_not_marked_tenant_aware_is_closed_to_tenant_tokens(env: Env) -> None:
    """A page added later without ``scope.tenant_aware`` answers 403 to a tenant token (the
    API routes' rule), and still serves an admin."""

    async def unmarked(request: Request) -> Response:
        return PlainTextResponse("every tenant's data")

    routes = _starlette_routes((("/unmarked", ("GET",), unmarked, "page"),), guard=True)
    app = Starlette(routes=routes, exception_handlers=exception_handlers())
    app.state.deps = env.deps
    app.state.auth = TokenAuth(env.deps.config.admin.tokens, env.deps.config.admin.read_only_tokens)
    token = await make_token(env, "acme", "read")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as client:
        refused = await client.get("/unmarked", headers=auth(token))
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "admin_only"
        assert (await client.get("/unmarked", headers=auth())).status_code == 200
