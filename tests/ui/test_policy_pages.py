"""Issue 15 on the support page, in a real headless Chromium (as ``test_support_page.py``):
a recipient held because its address is blocked says so in Portuguese first (and in English),
and the tenants page pauses and resumes a tenant with a note (audited)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.model import NewMessage, Suppression, SuppressionReason, Tenant
from gateway.core.tenant_policy import PolicyDefaults
from gateway.services.holds import HoldKeeper
from gateway.store.sqlite import SqliteStore
from tests.admin.support import FakeClock, make_config
from tests.fakes.dns_server import FakeDns
from tests.ui.served import admin_deps, admin_listening, log_in
from tests.ui.test_support_page import page, screenshots  # noqa: F401 (fixtures)

ADDRESS = "carla@example.com"


class _Tenants:
    async def tenant(self, name: str) -> Tenant:
        return Tenant(name)


@pytest.fixture
async def base(tmp_path: Path, fake_dns: FakeDns) -> AsyncIterator[tuple[str, SqliteStore]]:
    """The admin app with a store holding one recipient held for a blocked address."""
    cfg = make_config(tmp_path, fake_dns)
    clock = FakeClock()
    store = SqliteStore(cfg.store.path)
    await store.open()
    try:
        await store.ensure_tenant(Tenant("default"))
        await store.update_tenant_policy("default", {"suppressed_action": "hold"})
        since = clock.now() - timedelta(days=2)
        blocked = Suppression("default", ADDRESS, SuppressionReason.NONEXISTENT_ADDRESS, since)
        await store.add_suppression(blocked)
        await store.enqueue(
            NewMessage(
                queue_id="QHELD1",
                tenant="default",
                mail_from="app@sender.example",
                recipients=(ADDRESS,),
                content=b"Subject: Fatura\r\n\r\nx\r\n",
                message_id="<q@test>",
                subject="Fatura",
                received_at=clock.now(),
            ),
            timedelta(0),
        )
        keeper = HoldKeeper(store, clock, PolicyDefaults(), _Tenants())
        [held] = await keeper.hold(Tenant("default"), "QHELD1", {ADDRESS: blocked})
        assert held.address == ADDRESS
        deps = admin_deps(cfg, store, clock)
        async with admin_listening(deps) as base:
            yield base, store
    finally:
        await store.close()


async def test_held_recipient_is_explained(
    base: tuple[str, SqliteStore],
    page: Any,  # noqa: F811 (the fixture)
    screenshots: Path,  # noqa: F811
) -> None:
    url, _ = base
    tab = await page.new_page()
    async with asyncio.timeout(60):
        await log_in(tab, url)
        await tab.fill('input[name="address"]', ADDRESS)
        await tab.click('form[action="/support"] button[type="submit"]')
        held = tab.locator("section.held")
        await held.wait_for()
        assert await held.get_attribute("data-held-reason") == "suppressed"
        assert await held.get_attribute("data-held-until")
        text = await held.inner_text()
        assert "Mensagem retida" in text
        assert "Retida: endereço bloqueado por endereço inexistente desde" in text
        assert "será enviada se for desbloqueado antes de" in text
        await tab.screenshot(path=str(screenshots / "held-pt.png"), full_page=True)
        await tab.click("text=English")
        await tab.wait_for_url("**lang=en**")
        text = await tab.locator("section.held").inner_text()
        assert "Held: address blocked for nonexistent address since" in text
        assert "it will be sent if unblocked before" in text


async def test_pause_and_resume_a_tenant(
    base: tuple[str, SqliteStore],
    page: Any,  # noqa: F811 (the fixture)
    screenshots: Path,  # noqa: F811
) -> None:
    url, store = base
    tab = await page.new_page()
    async with asyncio.timeout(60):
        await log_in(tab, url)
        await tab.click('nav >> text="Clientes (pausa)"')
        row = tab.locator('tr.tenant[data-tenant="default"]')
        await row.wait_for()
        assert await row.get_attribute("data-paused") == "false"
        assert "Enviando" in await row.inner_text()
        # Pausing asks for a note first.
        await row.locator('button[type="submit"]').click()
        note = row.locator('input[name="note"]')
        assert await note.evaluate("e => e.validity.valueMissing") is True
        await note.fill("lista comprada, chamado 88")
        await row.locator('button[type="submit"]').click()
        await tab.wait_for_selector('tr.tenant[data-tenant="default"][data-paused="true"]')
        text = await tab.locator('tr.tenant[data-tenant="default"]').inner_text()
        assert "Pausado para revisão" in text
        assert "pausa manual" in text
        assert "lista comprada, chamado 88" in text
        await tab.screenshot(path=str(screenshots / "tenants-paused-pt.png"), full_page=True)
        # Resume.
        row = tab.locator('tr.tenant[data-tenant="default"]')
        await row.locator('input[name="note"]').fill("lista limpa")
        await row.locator('button[type="submit"]').click()
        await tab.wait_for_selector('tr.tenant[data-tenant="default"][data-paused="false"]')
    actions = [(e.action, e.detail.get("note")) for e in await store.list_audit(10, None)]
    assert actions[:2] == [
        ("tenant.resume", "lista limpa"),
        ("tenant.pause", "lista comprada, chamado 88"),
    ]
    policy = await store.tenant_policy("default")
    assert policy is not None
    assert not policy.paused
