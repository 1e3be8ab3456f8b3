"""The support page in a real headless Chromium (Debian's ``chromium``), driven by Playwright
for Python with its executable path pointed at it (Playwright's own browser download is never
used), against the admin app served by uvicorn on 127.0.0.1 with a real SQLite store.

The story a support agent lives: log in, search the customer's address, read the status card
(red: bounced and blocked), copy the message for the customer, unblock with a ticket number,
see it unblocked; switch to English; filter the suppression list.

Skipped when ``/usr/bin/chromium`` (or ``$CHROMIUM``) or the playwright package is missing,
except in CI, where that fails. Screenshots go to pytest's ``tmp_path`` (``$UI_SCREENSHOTS``
overrides, to look at them).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.admin.views import recipient_report
from gateway.core.model import (
    Category,
    Event,
    EventType,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.status_text import guidance
from gateway.store.sqlite import SqliteStore
from tests.admin.support import TOKEN, Env, FakeClock, make_config
from tests.fakes.dns_server import FakeDns
from tests.observability.tools import in_ci, require
from tests.ui.served import admin_deps, admin_listening

ADDRESS = "ana.souza@example.com"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _playwright() -> Any:
    try:
        from playwright import async_api
    except ImportError:
        if in_ci():
            pytest.fail("the playwright package is not installed; CI must install it")
        pytest.skip("the playwright package is not installed (pip install playwright)")
    return async_api


@dataclass
class Served:
    base: str
    env: Env


@pytest.fixture
async def served(tmp_path: Path, fake_dns: FakeDns) -> AsyncIterator[Served]:
    """The admin app on 127.0.0.1:<free port>, a store holding a bounced, blocked address."""
    fake_dns.add_mx("example.com", 10, "mx.example.com")
    fake_dns.add_a("mx.example.com", "127.0.0.2")
    cfg = make_config(tmp_path, fake_dns)
    clock = FakeClock()
    store = SqliteStore(cfg.store.path)
    await store.open()
    try:
        await store.ensure_tenant(Tenant("default"))
        deps = admin_deps(cfg, store, clock)
        env = Env(store, clock, deps, fake_dns, None, None)  # type: ignore[arg-type]
        queue_id = await env.seed(ADDRESS)  # 550 5.1.1 User unknown: bounced
        clock.advance(timedelta(minutes=1))
        [event] = [
            e for e in await store.events_for(ADDRESS, None, 10) if e.type is EventType.BOUNCED
        ]
        await store.suppress_with_event(
            Suppression("default", ADDRESS, SuppressionReason.NONEXISTENT_ADDRESS, clock.now(),
                        event_id=event.event_id),
            Event(None, "default", ADDRESS, EventType.SUPPRESSED, clock.now(), queue_id=queue_id,
                  reason=SuppressionReason.NONEXISTENT_ADDRESS.value),
        )  # fmt: skip
        await env.seed("bia@example.com", category=Category.MAILBOX_FULL, code=552,
                       enhanced="5.2.2", text="Mailbox full")  # fmt: skip
        await store.add_suppression(
            Suppression("default", "spam@example.com", SuppressionReason.COMPLAINT, clock.now())
        )
        async with admin_listening(deps) as base:
            yield Served(base, env)
    finally:
        await store.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    chromium = require("chromium", "/usr/bin/chromium", env="CHROMIUM",
                       how="apt-get install chromium")  # fmt: skip
    api = _playwright()
    async with api.async_playwright() as p:
        # A fresh, empty profile per test (Playwright wants it as user_data_dir, not a flag).
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            args=CHROMIUM_FLAGS,
            timeout=30_000,
            viewport={"width": 1100, "height": 900},
            locale="pt-BR",
        )
        try:
            context.set_default_timeout(10_000)
            yield context
        finally:
            await context.close()


async def test_log_in_search_copy_and_unblock(served: Served, page: Any, screenshots: Path) -> None:
    context = page
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.base)
    tab = await context.new_page()
    async with asyncio.timeout(90):
        # Log in: the form, a wrong token refused, the right one accepted (HttpOnly cookie).
        await tab.goto(served.base + "/")
        assert await tab.locator("html").get_attribute("lang") == "pt-BR"
        await tab.fill('input[name="token"]', "wrong-token")
        await tab.click('button[type="submit"]')
        assert "Token inválido" in await tab.inner_text("main")
        await tab.fill('input[name="token"]', TOKEN)
        await tab.click('button[type="submit"]')
        await tab.wait_for_selector('input[name="address"]')
        [cookie] = await context.cookies()
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert TOKEN not in cookie["value"]
        assert await tab.evaluate("document.cookie") == ""  # not readable by scripts

        # Search: the status card, red, with the title and what to do, in Portuguese.
        await tab.fill('input[name="address"]', ADDRESS)
        await tab.click('form[action="/support"] button[type="submit"]')
        card = tab.locator("section.card")
        await card.wait_for()
        assert await card.get_attribute("data-status") == "suppressed"
        assert "red" in (await card.get_attribute("class") or "")
        colour = await card.evaluate("e => getComputedStyle(e).borderLeftColor")
        assert colour == "rgb(198, 40, 40)"
        report = await recipient_report(
            served.env.store, ADDRESS, None, "pt-BR", served.env.clock.now()
        )
        assert report is not None
        text = await card.inner_text()
        assert await card.locator("h2").inner_text() == report.guidance.title
        assert report.guidance.what_to_do in text
        assert "O que fazer" in text
        timeline = await tab.inner_text("table.events")
        assert "550 5.1.1 User unknown" in timeline
        assert "mx.example.com" in timeline
        await tab.screenshot(path=str(screenshots / "support-pt-suppressed.png"), full_page=True)

        # Copy: the customer message lands on the clipboard and the button says so.
        message = await tab.input_value("#customer-message")
        assert message.strip()
        copy = tab.locator('button[data-copy="customer-message"]')
        await copy.click()
        await tab.wait_for_selector('button[data-copy="customer-message"][data-copied="true"]')
        assert await copy.inner_text() == "Copiado!"
        assert await tab.evaluate("navigator.clipboard.readText()") == message

        # Unblock: the button asks for the reason first; an empty reason is not sent.
        await tab.click("details.unblock summary")
        reason = tab.locator('details.unblock input[name="reason"]')
        await reason.wait_for()
        await tab.click('details.unblock button[type="submit"]')
        assert await reason.evaluate("e => e.validity.valueMissing") is True
        await reason.fill("CHAMADO-4711")
        await tab.click('details.unblock button[type="submit"]')
        await tab.wait_for_url("**/support?address=*")
        await card.wait_for()
        assert await card.get_attribute("data-status") == "bounced"
        assert await tab.locator("details.unblock").count() == 0
        unblocked = tab.locator('table.events td[data-type="unsuppressed"]')
        assert await unblocked.inner_text() == "desbloqueado"
        await tab.screenshot(path=str(screenshots / "support-pt-unblocked.png"), full_page=True)

        # English switch keeps the address.
        await tab.click("text=English")
        await tab.wait_for_url("**lang=en**")
        assert await tab.locator("html").get_attribute("lang") == "en"
        en = guidance(Status.BOUNCED, Category.NONEXISTENT_ADDRESS, lang="en")
        card_text = await tab.inner_text("section.card")
        assert en.title in card_text
        assert "What to do" in card_text
        await tab.screenshot(path=str(screenshots / "support-en-bounced.png"), full_page=True)

    store = served.env.store
    assert await store.find_suppression("default", ADDRESS, served.env.clock.now()) is None
    [entry, *_] = await store.list_audit(10, None)
    assert entry.action == "suppression.remove"
    assert entry.detail.get("reason") == "CHAMADO-4711"


async def test_suppression_list_filters(served: Served, page: Any, screenshots: Path) -> None:
    tab = await page.new_page()
    async with asyncio.timeout(60):
        await tab.goto(served.base + "/")
        await tab.fill('input[name="token"]', TOKEN)
        await tab.click('button[type="submit"]')
        await tab.wait_for_selector('input[name="address"]')
        await tab.click('nav >> text="Lista de bloqueio"')
        rows = tab.locator("table.suppressions tbody tr")
        await rows.first.wait_for()
        listed = await tab.inner_text("table.suppressions")
        assert ADDRESS in listed
        assert "spam@example.com" in listed
        await tab.select_option('select[name="reason"]', "complaint")
        await tab.click('form[action="/support/suppressions"] button[type="submit"]')
        await tab.wait_for_url("**reason=complaint**")
        listed = await tab.inner_text("table.suppressions")
        assert "spam@example.com" in listed
        assert ADDRESS not in listed
        await tab.screenshot(path=str(screenshots / "suppressions-pt.png"), full_page=True)
        # A row links to the address's support page.
        await tab.click("table.suppressions >> text=spam@example.com")
        await tab.wait_for_selector("section.card")
        assert await tab.locator("section.card").get_attribute("data-status") == "suppressed"
