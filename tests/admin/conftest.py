"""Fixtures for the admin API tests: a real store (SQLite and PostgreSQL: ``backend``), DNS
on loopback, and in-process HTTP clients over ASGI (in the test's event loop, like the
store's writer)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.admin.app import AdminDeps, build_admin_app, build_public_app
from gateway.core.model import Tenant
from gateway.services.checks import RecipientChecker
from gateway.services.dns import DnsResolver
from tests.admin.support import Env, FakeClock, make_config
from tests.backends import Backend
from tests.fakes.dns_server import FakeDns


@pytest.fixture
async def env(tmp_path: Path, fake_dns: FakeDns, backend: Backend) -> AsyncIterator[Env]:
    fake_dns.add_mx("example.com", 10, "mx.example.com")
    fake_dns.add_a("mx.example.com", "127.0.0.2")
    fake_dns.add_mx("gmail.com", 5, "gmail-smtp-in.l.google.com")
    fake_dns.add_null_mx("nomail.com.br")
    cfg = make_config(tmp_path, fake_dns)
    cfg = dataclasses.replace(cfg, store=backend.configure(cfg.store))
    clock = FakeClock()
    store = backend.make()
    await store.open()
    try:
        await store.ensure_tenant(Tenant("default"))
        await store.ensure_tenant(Tenant("acme"))
        checker = RecipientChecker(DnsResolver(cfg.dns, clock), store, clock, "reject")
        ready = {"intake": True, "relay": True}
        woken: list[int] = []
        deps = AdminDeps(
            config=cfg,
            store=store,  # type: ignore[arg-type]  # AdminDeps names the SQLite class
            checker=checker,
            clock=clock,
            readiness=lambda: dict(ready),
            metrics=_metrics,
            on_queued=lambda: woken.append(1),
        )
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=build_admin_app(deps)),
                base_url="http://admin.test",
                timeout=10,
            ) as client,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=build_public_app(deps)),
                base_url="http://public.test",
                timeout=10,
            ) as public,
        ):
            yield Env(store, clock, deps, fake_dns, client, public, ready, woken)  # type: ignore[arg-type]
    finally:
        await store.close()


async def _metrics() -> tuple[bytes, str]:
    return b"gateway_up 1\n", "text/plain; version=0.0.4"
