"""Fixtures for the admin API and observability tests on a real PostgreSQL store.

``env`` and ``sqlite_store`` have the names of the fixtures ``tests/admin`` and
``tests/observability`` use, so their test functions, collected again here
(``recollect``), run unchanged against a fresh PostgreSQL database (``tests.pg``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.admin.app import AdminDeps, build_admin_app, build_public_app
from gateway.checks import RecipientChecker
from gateway.core.model import Tenant
from gateway.dns import DnsResolver
from gateway.store.postgres import PostgresStore
from tests.admin.support import Env, FakeClock, make_config
from tests.fakes.dns_server import FakeDns
from tests.pg.fixtures import PostgresBackend, pg_backend, pg_server

__all__ = ["env", "pg_backend", "pg_server", "sqlite_store"]


@pytest.fixture
async def env(tmp_path: Path, fake_dns: FakeDns, pg_backend: PostgresBackend) -> AsyncIterator[Env]:
    """``tests/admin/conftest.py``'s ``env``, with the store on PostgreSQL."""
    fake_dns.add_mx("example.com", 10, "mx.example.com")
    fake_dns.add_a("mx.example.com", "127.0.0.2")
    fake_dns.add_mx("gmail.com", 5, "gmail-smtp-in.l.google.com")
    fake_dns.add_null_mx("nomail.com.br")
    cfg = make_config(tmp_path, fake_dns)
    cfg = dataclasses.replace(cfg, store=dataclasses.replace(cfg.store, url=pg_backend.url))
    clock = FakeClock()
    store = PostgresStore(pg_backend.url)
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
            metrics=lambda: (b"gateway_up 1\n", "text/plain; version=0.0.4"),
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


@pytest.fixture
async def sqlite_store(pg_backend: PostgresBackend) -> AsyncIterator[PostgresStore]:
    """``tests/observability``'s store fixture, on PostgreSQL (the name is theirs)."""
    store = PostgresStore(pg_backend.url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
