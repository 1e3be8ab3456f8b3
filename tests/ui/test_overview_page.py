"""Issue 16's pages in a real headless Chromium (as ``test_support_page.py`` drives it): the
overview (a DOM check of its server-drawn SVG charts, no script, font or resource from
elsewhere, and one screenshot to look at), an address without a record (what to check,
the address check with its correction, the tenant's activity, the message to copy) and the
message search reached from the address view, with each recipient's timeline.

Skipped when Chromium or playwright is missing, except in CI (see ``test_support_page``).
Screenshots go to pytest's ``tmp_path`` (``$UI_SCREENSHOTS`` overrides, to look at them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.core.model import Category, Event, EventType, Reason, Status, Tenant
from gateway.core.no_record import no_record_text
from gateway.store.sqlite import SqliteStore
from tests.admin.support import Env, FakeClock, make_config
from tests.fakes.dns_server import FakeDns
from tests.ui.served import admin_deps, admin_listening, log_in
from tests.ui.test_support_page import Served, page, screenshots  # noqa: F401  # fixtures

UOL = {"host": "mx.uol.com.br", "category": Category.SPAM_BLOCKED, "code": 554,
       "enhanced": "5.7.1", "text": "Blocked by policy"}  # fmt: skip


async def _week(env: Env) -> None:
    """Seven days of two tenants: acme sends every day and stops at 06:00 today; shop's
    mail to UOL fails; one message is held."""
    start = env.clock.now()
    for back in range(6, -1, -1):
        env.clock.at = start - timedelta(days=back, hours=6)  # 06:00 UTC each day
        for i in range(2 + back % 3):
            await env.seed(f"cliente{back}{i}@example.com", tenant="acme", status=Status.SENT,
                           category=None, code=250, enhanced="2.0.0", text="OK")  # fmt: skip
        await env.seed(f"caio{back}@uol.com.br", tenant="shop", **UOL)  # type: ignore[arg-type]
        if back % 2:
            await env.seed(f"lia{back}@bol.com.br", tenant="shop", status=Status.DEFERRED,
                           category=Category.RECEIVING_PROBLEM, host="mx.bol.com.br",
                           code=451, enhanced="4.3.0", text="Try again later")  # fmt: skip
    env.clock.at = start
    held = await env.seed("pedido@example.com", tenant="shop", status=Status.QUEUED)
    await env.store.set_held(
        held,
        True,
        lambda v: Event(v.recipient_id, v.tenant, v.address, EventType.HELD, start,
                        queue_id=v.queue_id, reason=Reason.HELD_BY_ADMIN),
    )  # fmt: skip


@pytest.fixture
async def served(tmp_path: Path, fake_dns: FakeDns) -> AsyncIterator[Served]:
    fake_dns.add_mx("example.com", 10, "mx.example.com")
    fake_dns.add_a("mx.example.com", "127.0.0.2")
    fake_dns.add_mx("gmail.com", 5, "gmail-smtp-in.l.google.com")
    cfg = make_config(tmp_path, fake_dns)
    clock = FakeClock()
    store = SqliteStore(cfg.store.path)
    await store.open()
    try:
        for name in ("default", "acme", "shop"):
            await store.ensure_tenant(Tenant(name))
        deps = admin_deps(cfg, store, clock)
        env = Env(store, clock, deps, fake_dns, None, None)  # type: ignore[arg-type]
        await _week(env)
        async with admin_listening(deps) as base:
            yield Served(base, env)
    finally:
        await store.close()


async def test_overview_charts(served: Served, page: Any, screenshots: Path) -> None:  # noqa: F811
    tab = await page.new_page()
    requested: list[str] = []
    tab.on("request", lambda r: requested.append(r.url))
    async with asyncio.timeout(60):
        await log_in(tab, served.base)
        await tab.click('nav >> text="Visão geral"')
        await tab.wait_for_url("**/overview**")
        figures = tab.locator("figure.chart")
        assert await figures.count() == 4
        kinds = [await f.get_attribute("data-chart") for f in await figures.all()]
        assert kinds == ["per-day", "categories", "domains", "providers"]
        # Every chart is drawn, visible, on the page's own markup.
        for svg in await tab.locator("figure.chart svg").all():
            box = await svg.bounding_box()
            assert box is not None
            assert box["width"] > 200
            assert box["height"] > 20
        per_day = tab.locator('figure[data-chart="per-day"]')
        labels = await per_day.locator("svg text").evaluate_all(
            "items => items.map(i => i.textContent)"
        )
        days = [label for label in labels if "/" in label]
        assert days == ["04/03", "05/03", "06/03", "07/03", "08/03", "09/03", "10/03"]
        today_sent = per_day.locator('rect[data-series="sent"]').last
        assert await today_sent.get_attribute("data-value") == "2"
        assert "10/03: entregues 2" in (await today_sent.locator("title").text_content() or "")
        fill = await today_sent.evaluate("e => getComputedStyle(e).fill")
        assert fill == "rgb(46, 125, 50)"  # green
        domains = await tab.locator('figure[data-chart="domains"] svg').text_content() or ""
        assert "uol.com.br: 7" in domains  # each bar's tooltip
        assert "bol.com.br: 3" in domains
        providers = tab.locator('figure[data-chart="providers"] rect')
        assert await providers.first.get_attribute("data-value") == "10"  # UOL runs BOL too
        assert "uol: 10" in (await providers.first.locator("title").text_content() or "")
        waiting = tab.locator('[data-section="waiting"]')
        assert await waiting.locator('[data-status="held"] strong').inner_text() == "1"
        assert await waiting.locator('[data-status="deferred"] strong').inner_text() == "3"
        row = tab.locator('tr[data-tenant="shop"] td[data-type="bounced"]')
        assert await row.inner_text() == "1 / 7"
        # Nothing but the page itself was fetched: no script, font or image from anywhere.
        assert requested
        assert all(url.startswith(served.base) for url in requested), requested
        assert await tab.locator("script[src], link[rel=stylesheet], img").count() == 0
        fonts = await tab.evaluate("document.fonts.size")
        assert fonts == 0
        await tab.screenshot(path=str(screenshots / "overview-pt.png"), full_page=True)

        # One tenant.
        await tab.click('tr[data-tenant="acme"] a')
        await tab.wait_for_url("**tenant=acme**")
        assert await tab.locator("table.tenants tbody tr").count() == 1
        assert await tab.locator('figure[data-chart="domains"] .empty').count() == 1


async def test_no_record_then_message_search(served: Served, page: Any, screenshots: Path) -> None:  # noqa: F811
    context = page
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.base)
    tab = await context.new_page()
    async with asyncio.timeout(60):
        await log_in(tab, served.base)
        await tab.fill('input[name="address"]', "maria@gmial.com")
        await tab.fill('input[name="tenant"]', "acme")
        await tab.click('form[action="/support"] button[type="submit"]')
        card = tab.locator("section.card")
        await card.wait_for()
        assert await card.get_attribute("data-status") == "no_record"
        text = no_record_text("pt-BR")
        assert await card.locator("h2").inner_text() == text.title
        checks = tab.locator("ol.checks li")
        assert await checks.count() == len(text.checks)
        check = tab.locator(".addrcheck")
        assert await check.get_attribute("data-accepted") == "false"
        assert await check.get_attribute("data-reason") == "typo"
        assert await check.locator("code.suggestion").inner_text() == "maria@gmail.com"
        activity = tab.locator("section.activity")
        assert "06:00:00" in (await activity.get_attribute("data-last-accepted") or "")
        rows = activity.locator("tbody tr")
        assert await rows.count() == 7
        assert await rows.first.locator("td").first.inner_text() == "Hoje"
        assert await rows.first.locator("td[data-accepted]").inner_text() == "2"
        await tab.click('button[data-copy="customer-message"]')
        await tab.wait_for_selector('button[data-copy="customer-message"][data-copied="true"]')
        copied = await tab.evaluate("navigator.clipboard.readText()")
        assert copied == text.customer_message
        await tab.screenshot(path=str(screenshots / "no-record-pt.png"), full_page=True)

        # A failing address: its view links to the message search and the timeline.
        await tab.fill('input[name="address"]', "caio0@uol.com.br")
        await tab.fill('input[name="tenant"]', "")
        await tab.click('form[action="/support"] button[type="submit"]')
        await tab.wait_for_selector('section.card[data-status="bounced"]')
        await tab.click("a.search-messages")
        await tab.wait_for_url("**/messages?recipient=caio0%40uol.com.br**")
        found = tab.locator("section.msg")
        assert await found.count() == 1
        steps = await found.locator("ol.events li").evaluate_all(
            "items => items.map(i => i.dataset.type)"
        )
        assert steps == ["queued", "bounced"]
        assert "554 5.7.1 Blocked by policy" in await found.inner_text()
        await tab.fill('input[name="recipient"]', "")
        await tab.fill('input[name="since"]', "ontem")
        await tab.click('form.search button[type="submit"]')
        await tab.wait_for_selector("p.error")
        assert "since" in await tab.inner_text("p.error")
