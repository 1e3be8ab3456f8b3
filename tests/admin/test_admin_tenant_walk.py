"""Every route of the generated OpenAPI document, called with a tenant token (tenant
``alpha``) against another tenant's data (``beta``): never an answer that carries beta's
data, never a change to it (issue 16 item 2).

The walk reads the document, so a route added later is walked too: each path parameter is
filled with beta's (an address, a queue id, the tenant's name, a token id; an unknown one
with beta's name), ``?tenant=beta`` is added, and a JSON body is built from the request
schema with beta's values in its tenant and address fields. An answer passes when it is a
403 or a 404, or a success or a 422 whose body names nothing of beta's. After the walk,
beta's message, suppression and token are checked unchanged. Routes that carry no tenant
data by design are in ``TENANT_AGNOSTIC``, each with its reason.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from gateway.core.model import (
    Event,
    EventType,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from tests.admin.support import Env, auth
from tests.admin.test_admin_tenant_tokens import make_token

#: (method, path) -> why a tenant token may call it without scoping.
TENANT_AGNOSTIC: dict[tuple[str, str], str] = {
    ("GET", "/api/openapi.json"): "the API's own description, no data; open route",
    ("GET", "/healthz"): "liveness probe, no data; open route",
    ("GET", "/readyz"): "readiness of the store and components, no tenant data; open route",
    ("GET", "/metrics"): "open route for Prometheus on the private listener (not token auth)",
    ("GET", "/login"): "the login form",
    ("POST", "/login"): "logging in (walked with beta's token id as a token: refused)",
    ("POST", "/logout"): "logging out",
}

BETA_ADDRESS = "beta-only@example.com"
BETA_SUPPRESSED = "beta-supp@example.com"
BETA_QUEUE = "QBETA00001"


def _markers(beta_token_id: str) -> tuple[str, ...]:
    """Strings that only beta's data contains."""
    return (BETA_ADDRESS, BETA_SUPPRESSED, BETA_QUEUE, beta_token_id, '"beta"', "beta-only")


async def _seed(env: Env) -> str:
    for name in ("alpha", "beta"):
        await env.store.ensure_tenant(Tenant(name))
    await env.seed("alpha-own@example.com", tenant="alpha", status=Status.DEFERRED)
    await env.seed(BETA_ADDRESS, tenant="beta", status=Status.DEFERRED, queue_id=BETA_QUEUE)
    now = env.clock.now()
    await env.store.suppress_with_event(
        Suppression("beta", BETA_SUPPRESSED, SuppressionReason.COMPLAINT, now),
        Event(
            None,
            "beta",
            BETA_SUPPRESSED,
            EventType.SUPPRESSED,
            now,
            reason=SuppressionReason.COMPLAINT.reason,
        ),
    )
    r = await env.client.post(
        "/api/v1/tenants/beta/tokens", json={"access": "read"}, headers=auth()
    )
    assert r.status_code == 201
    beta_id: str = r.json()["info"]["id"]
    return beta_id


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        found: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return found
    return schema


def _value(doc: dict[str, Any], name: str, schema: dict[str, Any]) -> Any:
    """A value for the body field ``name``: beta's where the field names a tenant or an
    address, else a plain value of the schema's type."""
    schema = _resolve(doc, schema)
    if "tenant" in name:
        return "beta"
    if name in ("address", "to", "recipient"):
        return BETA_SUPPRESSED
    if "enum" in schema:
        return schema["enum"][0]
    for choice in schema.get("anyOf", []):
        option = _resolve(doc, choice)
        if option.get("type") not in (None, "null"):
            return _value(doc, name, option)
    kind = schema.get("type")
    return {
        "string": "walk",
        "integer": 1,
        "number": 1,
        "boolean": False,
        "array": [],
        "object": {},
    }.get(kind if isinstance(kind, str) else "string", "walk")


def _body(doc: dict[str, Any], operation: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = _resolve(doc, content["application/json"]["schema"])
        props = schema.get("properties", {})
        wanted = set(schema.get("required", [])) | {
            n for n in props if "tenant" in n or n in ("address", "to")
        }
        body = {n: _value(doc, n, props[n]) for n in wanted if n in props}
        return {"content-type": "application/json"}, json.dumps(body).encode()
    if "application/x-www-form-urlencoded" in content:
        form = f"tenant=beta&address={quote(BETA_SUPPRESSED)}&reason=walk&csrf=x&lang=en"
        return {"content-type": "application/x-www-form-urlencoded"}, form.encode()
    if "text/csv" in content:
        csv = f"tenant,address,reason\nbeta,{BETA_ADDRESS},manual\n"
        return {"content-type": "text/csv"}, csv.encode()
    return {}, b""


def _path(path: str, beta_token_id: str) -> str:
    values = {
        "address": BETA_ADDRESS,
        "queue_id": BETA_QUEUE,
        "name": "beta",
        "tenant": "beta",
        "token_id": beta_token_id,
    }
    out = path
    while "{" in out:
        start, end = out.index("{"), out.index("}")
        name = out[start + 1 : end]
        value = values.get(name, "beta")
        if name == "address" and "suppressions" in path:
            value = BETA_SUPPRESSED
        out = out[:start] + quote(value, safe="@") + out[end + 1 :]
    return out


async def test_a_tenant_token_never_sees_nor_changes_another_tenants_data(env: Env) -> None:
    beta_token_id = await _seed(env)
    token = await make_token(env, "alpha", "write")
    doc = (await env.client.get("/api/openapi.json")).json()
    markers = _markers(beta_token_id)
    walked: dict[int, list[str]] = {}
    # Twice: naming beta (?tenant=beta), and naming no tenant (the route's default).
    for query, (path, item) in (
        (q, entry) for q in ("tenant=beta", "") for entry in doc["paths"].items()
    ):
        for method, operation in item.items():
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                continue
            if (method.upper(), path) in TENANT_AGNOSTIC:
                continue
            headers, content = _body(doc, operation)
            # An unblock needs its reason (a ticket), else it is a 422 before any look-up.
            extra = "reason=walk" if method.upper() == "DELETE" else ""
            url = _path(path, beta_token_id) + "?" + "&".join(p for p in (query, extra) if p)
            r = await env.client.request(
                method.upper(), url, headers=headers | auth(token), content=content
            )
            what = f"{method.upper()} {path}" + (" ?tenant=beta" if "tenant" in query else "")
            walked.setdefault(r.status_code, []).append(what)
            assert r.status_code in (200, 201, 202, 204, 303, 403, 404, 409, 422), (
                what,
                r.status_code,
                r.text[:300],
            )
            if r.status_code not in (403, 404):
                # A page echoes the query's tenant in its form: only JSON is held to '"beta"'.
                json_body = r.headers.get("content-type", "").startswith("application/json")
                # An address without a record in alpha is an answer (issue 16 item 1) that
                # echoes the address asked about: the caller's own input, not beta's data.
                text = r.text.replace(BETA_ADDRESS, "") if "{address}" in path else r.text
                leaked = [m for m in markers if m in text and (json_body or m != '"beta"')]
                assert not leaked, (what, r.status_code, leaked, r.text[:300])
    # The walk reached something: the named routes answer 404 for beta.
    for what in (
        "GET /api/v1/recipients/{address} ?tenant=beta",
        "GET /api/v1/messages ?tenant=beta",
        "GET /api/v1/messages/{queue_id}",
        "GET /api/v1/suppressions ?tenant=beta",
        "DELETE /api/v1/suppressions/{address}",
        "DELETE /api/v1/suppressions/{address} ?tenant=beta",
        "POST /api/v1/messages/{queue_id}/hold",
    ):
        assert what in walked.get(404, []), (what, walked)
    # beta's data is as it was.
    beta = await env.store.recipients_of(BETA_QUEUE)
    assert [r.status for r in beta] == [Status.DEFERRED]
    supp = await env.store.find_suppression("beta", BETA_SUPPRESSED, env.clock.now())
    assert supp is not None
    tokens = await env.store.list_tenant_tokens("beta")
    assert [t.revoked_at for t in tokens] == [None]
    by_token = [e for e in await env.store.list_audit(50, None) if e.actor.startswith("tt-")]
    assert not [e for e in by_token if "beta" in e.target + json.dumps(e.detail)], by_token


async def test_a_tenant_token_sees_its_own_data(env: Env) -> None:
    await _seed(env)
    token = await make_token(env, "alpha", "read")
    mine = await env.client.get("/api/v1/messages", headers=auth(token))
    assert mine.status_code == 200
    assert [m["tenant"] for m in mine.json()["items"]] == ["alpha"]
    same = await env.client.get("/api/v1/messages?tenant=alpha", headers=auth(token))
    assert same.json() == mine.json()
    everything = await env.client.get("/api/v1/messages", headers=auth())
    assert {m["tenant"] for m in everything.json()["items"]} == {"alpha", "beta"}
    r = await env.client.get("/api/v1/recipients/alpha-own@example.com", headers=auth(token))
    assert r.status_code == 200
    foreign = await env.client.get(f"/api/v1/recipients/{BETA_ADDRESS}", headers=auth(token))
    unknown = await env.client.get("/api/v1/recipients/nobody@example.com", headers=auth(token))
    # beta's address is, for alpha, an address without a record, as an unknown one is.
    assert foreign.status_code == unknown.status_code == 200
    assert foreign.json()["status"] == unknown.json()["status"] == "no_record"
    assert foreign.json()["tenant_activity"] == unknown.json()["tenant_activity"]
    assert foreign.json()["tenant_activity"]["tenant"] == "alpha"
    nope = await env.client.get("/api/v1/messages?tenant=nosuch", headers=auth(token))
    beta = await env.client.get("/api/v1/messages?tenant=beta", headers=auth(token))
    assert nope.status_code == beta.status_code == 404
    assert nope.json()["error"]["code"] == beta.json()["error"]["code"]
    stats = (await env.client.get("/api/v1/stats", headers=auth(token))).json()
    assert set(stats["tenants"]) == {"alpha"}
    tenants = (await env.client.get("/api/v1/tenants", headers=auth(token))).json()
    assert [t["name"] for t in tenants["items"]] == ["alpha"]


async def test_the_support_page_with_a_tenant_token_session(env: Env) -> None:
    await _seed(env)
    token = await make_token(env, "alpha", "write")
    login = await env.client.post(
        "/login", data={"token": token, "lang": "en"}, follow_redirects=False
    )
    assert login.status_code == 303
    assert env.client.cookies.get("gw_session")  # the client keeps it from here on
    page = await env.client.get("/support", params={"address": "alpha-own@example.com"})
    assert page.status_code == 200
    assert "alpha-own@example.com" in page.text
    foreign = await env.client.get("/support", params={"address": BETA_ADDRESS, "tenant": "beta"})
    assert foreign.status_code == 200
    assert BETA_QUEUE not in foreign.text
    listing = await env.client.get("/support/suppressions")
    assert listing.status_code == 200
    assert BETA_SUPPRESSED not in listing.text
    # Revoking the token ends its session at once.
    info = (await env.client.get("/api/v1/tenants/alpha/tokens", headers=auth())).json()
    token_id = info["items"][0]["id"]
    await env.client.delete(f"/api/v1/tenants/alpha/tokens/{token_id}", headers=auth())
    after = await env.client.get("/support/suppressions", follow_redirects=False)
    assert after.status_code == 303
