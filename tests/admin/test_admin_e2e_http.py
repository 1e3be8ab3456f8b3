"""End to end over real HTTP on loopback: serve_http (uvicorn) + httpx.AsyncClient."""

from __future__ import annotations

import asyncio

import httpx

from gateway.admin.app import build_admin_app, build_public_app, serve_http
from gateway.core.verp import make_unsubscribe_token
from tests.admin.support import RO_TOKEN, SECRET, Env, auth
from tests.waiting import wait_until


async def test_admin_and_public_listeners_over_loopback(env: Env) -> None:
    stopping = asyncio.Event()
    ports: dict[str, int] = {}
    async with asyncio.timeout(20), asyncio.TaskGroup() as tasks:
        tasks.create_task(
            serve_http(
                build_admin_app(env.deps),
                "127.0.0.1",
                0,
                stopping,
                on_listening=lambda p: ports.__setitem__("admin", p),
            )
        )
        tasks.create_task(
            serve_http(
                build_public_app(env.deps),
                "127.0.0.1",
                0,
                stopping,
                on_listening=lambda p: ports.__setitem__("public", p),
            )
        )
        try:
            await wait_until(lambda: len(ports) == 2, 5, what="both listeners up")
            base = f"http://127.0.0.1:{ports['admin']}"
            async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                assert (await client.get("/healthz")).status_code == 200
                assert (await client.get("/readyz")).json()["ready"] is True
                assert (await client.get("/api/v1/tenants")).status_code == 401
                r = await client.post(
                    "/api/v1/suppressions",
                    json={"address": "e2e@example.com", "note": "e2e"},
                    headers=auth(),
                )
                assert r.status_code == 201
                report = await client.get(
                    "/api/v1/recipients/e2e@example.com?lang=en", headers=auth(RO_TOKEN)
                )
                assert report.json()["status"] == "suppressed"
                denied = await client.delete(
                    "/api/v1/suppressions/e2e@example.com?reason=T", headers=auth(RO_TOKEN)
                )
                assert denied.status_code == 403
                lifted = await client.delete(
                    "/api/v1/suppressions/e2e@example.com?reason=T-1", headers=auth()
                )
                assert lifted.status_code == 200
                big = await client.post("/api/v1/send-test", content=b"x" * 10_000, headers=auth())
                assert big.status_code == 413
                sent = await client.post(
                    "/api/v1/send-test", json={"to": "ops@example.com"}, headers=auth()
                )
                assert sent.status_code == 202
                doc = (await client.get("/api/openapi.json")).json()
                assert "/api/v1/recipients/{address}" in doc["paths"]
                login = await client.post("/login", data={"token": auth()["Authorization"][7:]})
                assert login.status_code == 303
                page = await client.get("/support", params={"address": "ops@example.com"})
                assert "ops@example.com" in page.text
            token = make_unsubscribe_token("acme", "e2e@example.com", SECRET.encode())
            public = f"http://127.0.0.1:{ports['public']}"
            async with httpx.AsyncClient(base_url=public, timeout=5) as client:
                r = await client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
                assert r.status_code == 200
            assert await env.store.find_suppression("acme", "e2e@example.com", env.clock.now())
        finally:
            stopping.set()
