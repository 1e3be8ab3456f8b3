"""The support page in headless Chromium with a tenant token (issue 16 item 2): a client
company's help desk logs in with the token made for its tenant, sees its own customer's
history, finds nothing of another tenant's (an address the other tenant bounced reads as
"no record", the suppression list holds only its own, a URL naming the other tenant is a
404), and is logged out the moment an admin revokes the token.

Uses ``test_support_page``'s fixtures: the admin app on loopback, a SQLite store whose
``default`` tenant has a bounced, blocked address and two other suppressions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from gateway.core.model import Status, Tenant
from tests.admin.support import TOKEN
from tests.ui.test_support_page import ADDRESS, Served, page, screenshots, served

__all__ = ["page", "screenshots", "served"]  # the fixtures this module uses

OWN = "cliente.acme@example.com"


async def test_a_tenant_token_sees_only_its_tenant(
    served: Served, page: Any, screenshots: Path
) -> None:
    await served.env.store.ensure_tenant(Tenant("acme"))
    await served.env.seed(OWN, tenant="acme", status=Status.DEFERRED)
    admin = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as api:
        made = await api.post(
            "/api/v1/tenants/acme/tokens", json={"access": "write"}, headers=admin
        )
        assert made.status_code == 201
        token, token_id = made.json()["token"], made.json()["info"]["id"]
        tab = await page.new_page()
        async with asyncio.timeout(90):
            await tab.goto(served.base + "/")
            await tab.fill('input[name="token"]', token)
            await tab.click('button[type="submit"]')
            await tab.wait_for_selector('input[name="address"]')

            # Its own customer: the status card.
            await tab.goto(f"{served.base}/support?address={OWN}")
            card = tab.locator("section.card")
            await card.wait_for()
            assert await card.get_attribute("data-status") == "deferred"

            # Another tenant's bounced, blocked address: "no record" (the answer for an
            # address the tenant never sent to), with acme's own activity; nothing of it.
            await tab.goto(f"{served.base}/support?address={ADDRESS}")
            await tab.wait_for_selector("main")
            main = await tab.inner_text("main")
            assert "não tem registro deste endereço" in main
            assert "Atividade de envio do cliente — acme" in main
            statuses = [
                await c.get_attribute("data-status")
                for c in await tab.locator("[data-status]").all()
            ]
            assert not {"suppressed", "bounced"} & set(statuses), statuses
            assert "550 5.1.1" not in main
            assert "User unknown" not in main
            await tab.screenshot(path=str(screenshots / "tenant-token-foreign.png"), full_page=True)

            # The suppression list: none of the default tenant's three.
            await tab.goto(f"{served.base}/support/suppressions")
            listing = await tab.inner_text("main")
            assert ADDRESS not in listing
            assert "spam@example.com" not in listing
            answer = await tab.goto(f"{served.base}/support/suppressions?tenant=default")
            assert answer is not None
            assert answer.status == 404

            # Revoked: the session ends at once (back to the login form).
            gone = await api.delete(f"/api/v1/tenants/acme/tokens/{token_id}", headers=admin)
            assert gone.status_code == 200
            await tab.goto(f"{served.base}/support?address={OWN}")
            await tab.wait_for_selector('input[name="token"]')
