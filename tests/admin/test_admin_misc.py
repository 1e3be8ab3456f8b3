"""Address check, send-test, stats, probes, metrics and the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

from gateway.admin.app import ROUTES, build_admin_app
from gateway.core.model import Category, Status, Suppression, SuppressionReason
from tests.admin.support import RO_TOKEN, Env, auth


async def test_check_address_runs_the_intake_checks(env: Env) -> None:
    ok = (
        await env.client.post(
            "/api/v1/addresses/check", json={"address": "a@example.com"}, headers=auth()
        )
    ).json()
    assert ok["accepted"] is True
    typo = (
        await env.client.post(
            "/api/v1/addresses/check", json={"address": "maria@gmial.com"}, headers=auth()
        )
    ).json()
    assert typo["accepted"] is False
    assert typo["reason"] == "typo"
    assert typo["suggestion"] == "maria@gmail.com"
    null = (
        await env.client.post(
            "/api/v1/addresses/check", json={"address": "x@nomail.com.br"}, headers=auth()
        )
    ).json()
    assert null["reason"] == "null_mx"
    assert null["reply_code"] == 556
    await env.store.add_suppression(
        Suppression("acme", "s@example.com", SuppressionReason.COMPLAINT, env.clock.now())
    )
    supp = (
        await env.client.post(
            "/api/v1/addresses/check",
            json={"address": "s@example.com", "tenant": "acme"},
            headers=auth(),
        )
    ).json()
    assert supp["reason"] == "suppressed"
    bad = await env.client.post("/api/v1/addresses/check", json={}, headers=auth())
    assert bad.status_code == 422
    missing = await env.client.post(
        "/api/v1/addresses/check",
        json={"address": "a@example.com", "tenant": "nope"},
        headers=auth(),
    )
    assert missing.status_code == 404


async def test_send_test_enqueues_for_the_default_tenant(env: Env) -> None:
    r = await env.client.post("/api/v1/send-test", json={"to": "Ops@Example.com"}, headers=auth())
    assert r.status_code == 202
    queue_id = r.json()["queue_id"]
    assert len(queue_id) == 20
    [view] = await env.store.recipients_of(queue_id)
    assert (view.address, view.tenant, view.status) == ("ops@example.com", "default", Status.QUEUED)
    content = await env.store.load_content(queue_id)
    assert content is not None
    assert b"Subject: Gateway test message" in content
    assert env.woken
    refused = await env.client.post(
        "/api/v1/send-test", json={"to": "x@nomail.com.br"}, headers=auth()
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "recipient_refused"


async def test_stats_by_tenant_and_provider_from_the_mx_host(env: Env) -> None:
    await env.seed(
        "a@gmail.com",
        status=Status.SENT,
        category=Category.DELIVERED,
        host="gmail-smtp-in.l.google.com",
    )
    await env.seed(
        "b@custom.com.br",
        category=Category.SPAM_BLOCKED,
        host="mx1.hotmail.com",
        code=550,
        enhanced="5.7.1",
    )
    await env.seed("c@example.com", tenant="acme", host="mx.example.com")
    r = await env.client.get("/api/v1/stats", headers=auth(RO_TOKEN))
    body = r.json()
    assert body["providers"]["gmail"]["events"] == {"sent": 1}
    # grouped by MX host: a company domain hosted by Microsoft counts as outlook
    assert body["providers"]["outlook"]["categories"] == {"spam_blocked": 1}
    assert body["providers"]["other"]["mx_hosts"] == {"mx.example.com": 1}
    assert set(body["providers"]) == {"gmail", "outlook", "yahoo", "uol", "terra", "other"}
    assert body["tenants"]["acme"]["events"] == {"queued": 1, "bounced": 1}
    assert body["tenants"]["default"]["recipients"] == {"sent": 1, "bounced": 1}
    since = (env.clock.now() + timedelta(hours=1)).isoformat()
    empty = (await env.client.get("/api/v1/stats", params={"since": since}, headers=auth())).json()
    assert empty["tenants"] == {}
    assert (await env.client.get("/api/v1/stats?since=bad", headers=auth())).status_code == 422


async def test_healthz_and_readyz_name_what_fails(env: Env) -> None:
    assert (await env.client.get("/healthz")).json() == {"status": "ok"}
    ready = await env.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": True, "intake": True, "relay": True}
    env.ready["relay"] = False
    down = await env.client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["failing"] == ["relay"]


async def test_readyz_pings_the_store(env: Env) -> None:
    await env.store.close()
    down = await env.client.get("/readyz")
    assert down.status_code == 503
    assert "store" in down.json()["failing"]
    await env.store.open()  # the fixture closes it again


async def test_metrics_route(env: Env) -> None:
    r = await env.client.get("/metrics")
    assert r.text == "gateway_up 1\n"
    assert r.headers["content-type"].startswith("text/plain")
    env.deps.metrics = None
    assert (await env.client.get("/metrics")).status_code == 404


async def test_openapi_describes_every_route(env: Env) -> None:
    doc = (await env.client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    app = build_admin_app(env.deps)
    routes = {(r.path, m) for r in app.routes for m in r.methods if m != "HEAD"}  # type: ignore[attr-defined]
    assert routes == {(p, m) for p, ms, _, _ in ROUTES for m in ms}
    for path, method in routes:
        assert method.lower() in doc["paths"].get(path, {}), (method, path)
    assert set(doc["paths"]) == {p for p, _ in routes}
    schemas = doc["components"]["schemas"]
    refs = {
        part.split("/")[-1]
        for part in str(doc).replace("'", " ").split()
        if part.startswith("#/components/schemas/")
    }
    assert refs <= set(schemas)
