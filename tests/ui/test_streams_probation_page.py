"""Issue 15 items 1 and 3 on the support page, in a real headless Chromium (as
``test_support_page.py``): a marketing opt-out says in Portuguese what its scope means (and
in English), and an unblock from the page puts the address on probation, shown with its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.model import NewMessage, Suppression, SuppressionReason, Tenant
from gateway.core.streams import Scope, Stream
from gateway.store.sqlite import SqliteStore
from tests.admin.support import FakeClock, make_config
from tests.fakes.dns_server import FakeDns
from tests.ui.served import admin_deps, admin_listening, log_in
from tests.ui.test_support_page import page, screenshots  # noqa: F401 (fixtures)

OPTED_OUT = "joana@example.com"
BOUNCED = "rui@example.com"


def _message(queue_id: str, address: str, at: Any, stream: Stream) -> NewMessage:
    return NewMessage(
        queue_id=queue_id,
        tenant="default",
        mail_from="app@sender.example",
        recipients=(address,),
        content=b"Subject: Fatura\r\n\r\nx\r\n",
        message_id=f"<{queue_id}@test>",
        subject="Fatura",
        received_at=at,
        stream=stream,
    )


@pytest.fixture
async def base(tmp_path: Path, fake_dns: FakeDns) -> AsyncIterator[tuple[str, SqliteStore]]:
    """The admin app over a store with a marketing opt-out and an address blocked for all."""
    cfg = make_config(tmp_path, fake_dns)
    clock = FakeClock()
    store = SqliteStore(cfg.store.path)
    await store.open()
    try:
        await store.ensure_tenant(Tenant("default"))
        since = clock.now() - timedelta(days=2)
        await store.enqueue(_message("QINV1", OPTED_OUT, since, Stream.TRANSACTIONAL), timedelta(0))
        await store.add_suppression(
            Suppression(
                "default",
                OPTED_OUT,
                SuppressionReason.OPT_OUT,
                since,
                None,
                None,
                "",
                Scope.MARKETING,
            )
        )
        await store.enqueue(_message("QINV2", BOUNCED, since, Stream.TRANSACTIONAL), timedelta(0))
        await store.add_suppression(
            Suppression("default", BOUNCED, SuppressionReason.REPEATED_FAILURES, since)
        )
        deps = admin_deps(cfg, store, clock)
        async with admin_listening(deps) as base:
            yield base, store
    finally:
        await store.close()


async def _search(tab: Any, address: str) -> None:
    await tab.fill('input[name="address"]', address)
    await tab.click('form[action="/support"] button[type="submit"]')


async def test_a_marketing_opt_out_says_what_its_scope_means(
    base: tuple[str, SqliteStore],
    page: Any,  # noqa: F811 (the fixture)
    screenshots: Path,  # noqa: F811
) -> None:
    url, _ = base
    tab = await page.new_page()
    async with asyncio.timeout(60):
        await log_in(tab, url)
        await _search(tab, OPTED_OUT)
        scope = tab.locator("section.suppression p.scope")
        await scope.wait_for()
        assert await scope.get_attribute("data-scope") == "marketing"
        text = await scope.inner_text()
        assert "o cliente pediu para não receber marketing; cobranças continuam sendo enviadas" in (
            text
        )
        # The invoices still go: the card shows the last recipient's status, not "Bloqueado".
        card = tab.locator("section.card")
        assert await card.get_attribute("data-status") == "queued"
        await tab.screenshot(path=str(screenshots / "scope-marketing-pt.png"), full_page=True)
        await tab.click("text=English")
        await tab.wait_for_url("**lang=en**")
        text = await tab.locator("section.suppression p.scope").inner_text()
        assert "the customer asked not to receive marketing; invoices are still sent" in text
        # The suppression list names each row's scope.
        await tab.goto(url + "/support/suppressions?lang=pt-BR")
        row = tab.locator('table.suppressions tr[data-scope="marketing"]')
        await row.wait_for()
        assert OPTED_OUT in await row.inner_text()
        assert "só marketing" in await row.inner_text()
        other = tab.locator('table.suppressions tr[data-scope="all"]')
        assert "todos os e-mails" in await other.inner_text()


async def test_an_unblock_from_the_page_shows_the_probation(
    base: tuple[str, SqliteStore],
    page: Any,  # noqa: F811 (the fixture)
    screenshots: Path,  # noqa: F811
) -> None:
    url, store = base
    tab = await page.new_page()
    async with asyncio.timeout(60):
        await log_in(tab, url)
        await _search(tab, BOUNCED)
        section = tab.locator("section.suppression")
        await section.wait_for()
        assert await section.locator("p.scope").get_attribute("data-scope") == "all"
        assert await tab.locator("section.probation").count() == 0
        await section.locator("details.unblock summary").click()
        await section.locator('input[name="reason"]').fill("chamado 42")
        await section.locator("button.danger").click()
        probation = tab.locator("section.probation")
        await probation.wait_for()
        until = await probation.get_attribute("data-until")
        text = await probation.inner_text()
        assert "Em observação após o desbloqueio" in text
        assert "bloqueia o endereço de novo na hora" in text
        assert "Nenhuma entrega desde o desbloqueio ainda." in text
        assert await tab.locator("section.suppression").count() == 0
        await tab.screenshot(path=str(screenshots / "probation-pt.png"), full_page=True)
        await tab.click("text=English")
        await tab.wait_for_url("**lang=en**")
        assert (
            "On probation after the unblock" in await tab.locator("section.probation").inner_text()
        )
    # The page's unblock started the probation the store keeps (30 days, the default).
    [kept] = await store.probations(BOUNCED, "default", FakeClock().now())
    assert until == kept.until.isoformat()
    assert kept.until - kept.since == timedelta(days=30)
