"""Tenants: create (secret shown once, verifiable by the SMTP intake), list, update, rotate."""

from __future__ import annotations

from gateway.services.credentials import verify_secret
from tests.admin.support import Env, auth


async def test_create_returns_credentials_once_and_stores_only_a_hash(env: Env) -> None:
    r = await env.client.post(
        "/api/v1/tenants",
        json={
            "name": "billing",
            "allowed_sender_domains": ["Billing.Example.com"],
            "hourly_quota": 100,
            "webhook_url": "https://hooks.example.com/gw",
        },
        headers=auth(),
    )
    assert r.status_code == 201
    body = r.json()
    secret = body["credentials"]["secret"]
    assert body["credentials"]["username"] == "billing"
    assert body["webhook_secret"].startswith("whsec_")
    assert body["tenant"]["allowed_sender_domains"] == ["billing.example.com"]
    stored = await env.store.get_credentials("billing")
    assert stored is not None
    assert stored[0] == "billing"
    assert secret not in stored[1]
    assert verify_secret(secret.encode(), stored[1])  # the intake accepts it
    listed = (await env.client.get("/api/v1/tenants", headers=auth())).json()["items"]
    billing = next(t for t in listed if t["name"] == "billing")
    assert billing["usernames"] == ["billing"]
    assert "secret" not in str(billing).replace("webhook_secret_set", "")
    again = await env.client.post("/api/v1/tenants", json={"name": "billing"}, headers=auth())
    assert again.status_code == 409


async def test_create_validates(env: Env) -> None:
    for body in (
        {"name": "Bad Name"},
        {"name": "ok", "hourly_quota": -1},
        {"name": "ok", "allowed_sender_domains": ["not a domain"]},
        {"name": "ok", "webhook_url": "ftp://x"},
        {"name": "ok", "colour": "blue"},
    ):
        r = await env.client.post("/api/v1/tenants", json=body, headers=auth())
        assert r.status_code == 422, body


async def test_patch_updates_settings(env: Env) -> None:
    r = await env.client.patch(
        "/api/v1/tenants/acme",
        json={
            "daily_quota": 500,
            "list_unsubscribe": True,
            "bounce_notice": True,
            "allowed_sender_domains": ["acme.com.br"],
            "webhook_url": "https://acme.com.br/hook",
            "failure_threshold": 5,
        },
        headers=auth(),
    )
    assert r.status_code == 200
    tenant = r.json()["tenant"]
    assert tenant["daily_quota"] == 500
    assert tenant["list_unsubscribe"] is True
    assert tenant["failure_threshold"] == 5
    assert r.json()["webhook_secret"].startswith("whsec_")
    settings = await env.store.tenant_settings("acme")
    assert settings is not None
    assert settings.tenant.allowed_sender_domains == ("acme.com.br",)
    assert settings.bounce_notice
    fetched = (await env.client.get("/api/v1/tenants/acme", headers=auth())).json()
    assert fetched["webhook_secret_set"] is True
    assert (
        await env.client.patch("/api/v1/tenants/nope", json={}, headers=auth())
    ).status_code == 404
    assert (await env.client.get("/api/v1/tenants/nope", headers=auth())).status_code == 404
    bad = await env.client.patch(
        "/api/v1/tenants/acme", json={"bounce_notice": "yes"}, headers=auth()
    )
    assert bad.status_code == 422


async def test_rotate_credentials_replaces_the_secret(env: Env) -> None:
    created = (
        await env.client.post("/api/v1/tenants", json={"name": "crm"}, headers=auth())
    ).json()
    old = created["credentials"]["secret"]
    r = await env.client.post("/api/v1/tenants/crm/credentials", headers=auth())
    assert r.status_code == 200
    new = r.json()["secret"]
    assert new != old
    stored = await env.store.get_credentials("crm")
    assert stored is not None
    assert verify_secret(new.encode(), stored[1])
    assert not verify_secret(old.encode(), stored[1])
    missing = await env.client.post("/api/v1/tenants/nope/credentials", headers=auth())
    assert missing.status_code == 404
    taken = await env.client.post(
        "/api/v1/tenants/acme/credentials", json={"username": "crm"}, headers=auth()
    )
    assert taken.status_code == 409


async def test_a_note_without_paused_explains_the_change_in_the_audit_log(env: Env) -> None:
    r = await env.client.patch(
        "/api/v1/tenants/acme",
        json={"daily_quota": 900, "note": "ticket 4512: Black Friday volume"},
        headers=auth(),
    )
    assert r.status_code == 200
    assert r.json()["tenant"]["paused"] is False  # a note alone pauses nothing
    entries = (await env.client.get("/api/v1/audit", headers=auth())).json()["items"]
    update = next(e for e in entries if e["action"] == "tenant.update")
    assert update["target"] == "acme"
    assert update["detail"]["note"] == "ticket 4512: Black Friday volume"
    assert update["detail"]["fields"] == ["daily_quota", "note"]


async def test_durations_of_zero_or_past_any_clock_are_refused_with_the_key(env: Env) -> None:
    for key in ("probation", "hold_window", "pause_window"):
        for value in ("0ms", "0.0d", "9999999w", "5 years"):
            r = await env.client.patch("/api/v1/tenants/acme", json={key: value}, headers=auth())
            assert r.status_code == 422, (key, value)
            assert key in r.json()["error"]["message"], (key, value)
