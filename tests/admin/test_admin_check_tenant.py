"""``POST /api/v1/addresses/check`` without a tenant runs every check as
``smtp.default_tenant`` (suppression and quota included), stored or not, as the SMTP intake
does for a trusted client; the answer names the tenant it checked as."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx

from gateway.admin.app import build_admin_app
from gateway.core import replies
from gateway.core.model import Status, Suppression, SuppressionReason, Tenant
from tests.admin.support import Env, auth, make_config


async def _check(client: httpx.AsyncClient, **body: str) -> dict[str, Any]:
    r = await client.post("/api/v1/addresses/check", json=body, headers=auth())
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_without_a_tenant_a_suppressed_address_is_refused_as_the_default(env: Env) -> None:
    await env.store.add_suppression(
        Suppression(
            "default", "gone@example.com", SuppressionReason.NONEXISTENT_ADDRESS, env.clock.now()
        )
    )
    answer = await _check(env.client, address="gone@example.com")
    assert answer["tenant"] == "default"
    assert (answer["accepted"], answer["reason"]) == (False, "suppressed")
    assert (answer["reply_code"], answer["enhanced"]) == (
        replies.SUPPRESSED.code,
        replies.SUPPRESSED.enhanced,
    )
    other = await _check(env.client, address="gone@example.com", tenant="acme")
    assert (other["tenant"], other["accepted"]) == ("acme", True)


async def test_without_a_tenant_the_default_tenants_quota_counts(env: Env) -> None:
    await env.store.update_tenant(Tenant("default", hourly_quota=1))
    await env.seed("ana@example.com", status=Status.QUEUED)
    answer = await _check(env.client, address="bia@example.com")
    assert answer["tenant"] == "default"
    assert (answer["accepted"], answer["reason"]) == (False, "quota")
    assert answer["reply_code"] == replies.QUOTA_EXHAUSTED.code


async def test_a_default_tenant_not_in_the_store_is_checked_as_the_intake_would(
    env: Env, tmp_path: Path
) -> None:
    cfg = make_config(tmp_path, env.dns)
    cfg = dataclasses.replace(cfg, smtp=dataclasses.replace(cfg.smtp, default_tenant="walk-in"))
    assert await env.store.get_tenant("walk-in") is None
    await env.store.add_suppression(
        Suppression("walk-in", "gone@example.com", SuppressionReason.OPT_OUT, env.clock.now())
    )
    app = build_admin_app(dataclasses.replace(env.deps, config=cfg))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as client:
        answer = await _check(client, address="gone@example.com")
        assert (answer["tenant"], answer["reason"]) == ("walk-in", "suppressed")
        named = await _check(client, address="gone@example.com", tenant="walk-in")
        assert (named["tenant"], named["reason"]) == ("walk-in", "suppressed")
        missing = await client.post(
            "/api/v1/addresses/check",
            json={"address": "gone@example.com", "tenant": "nope"},
            headers=auth(),
        )
        assert missing.status_code == 404
