"""The admin app served on loopback for the page tests, and the support page's log-in.

Each page test seeds its own store; these are the steps every one of them repeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gateway.admin.app import AdminDeps, build_admin_app, serve_http
from gateway.config import Config
from gateway.core.ports import Clock, Store
from gateway.services.checks import RecipientChecker
from gateway.services.dns import DnsResolver
from tests.admin.support import TOKEN
from tests.waiting import wait_until


def admin_deps(cfg: Config, store: Store, clock: Clock) -> AdminDeps:
    """What the admin app needs, with the intake's real recipient check and both sides
    reported ready."""
    return AdminDeps(
        config=cfg,
        store=store,
        checker=RecipientChecker(DnsResolver(cfg.dns, clock), store, clock, "reject"),
        clock=clock,
        readiness=lambda: {"intake": True, "relay": True},
    )


@asynccontextmanager
async def admin_listening(deps: AdminDeps) -> AsyncIterator[str]:
    """The admin app on a free loopback port: its base URL while the block runs."""
    stopping = asyncio.Event()
    ports: list[int] = []
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(
            serve_http(build_admin_app(deps), "127.0.0.1", 0, stopping, on_listening=ports.append)
        )
        try:
            await wait_until(lambda: ports, 5, what="the admin listener up")
            yield f"http://127.0.0.1:{ports[0]}"
        finally:
            stopping.set()


async def log_in(tab: Any, base: str, token: str = TOKEN) -> None:
    """Log in to the support page with ``token`` and wait for the search box."""
    await tab.goto(base + "/")
    await tab.fill('input[name="token"]', token)
    await tab.click('button[type="submit"]')
    await tab.wait_for_selector('input[name="address"]')
