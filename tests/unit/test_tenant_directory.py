"""The tenant directory over a real SQLite store, with a fake monotonic clock.

A snapshot younger than the expiry costs no I/O; an older one costs one read of the change
counter, shared by every caller at that moment, and a reload only when the counter moved;
``invalidate`` (this process's own admin write) reloads at the next look-up; a store that
fails leaves the last snapshot in use. DKIM signing and the auto-block policy read it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.core.errors import StoreError
from gateway.core.model import Tenant
from gateway.core.policy import PolicySettings
from gateway.core.ports import SystemClock
from gateway.core.records import TenantSettings
from gateway.mail.dkim import keygen
from gateway.services.outcomes import PolicyApplier
from gateway.services.signing import DkimSigner
from gateway.services.tenants import DkimKeyRow, TenantDirectory
from gateway.store.sqlite import SqliteStore


class Counting:
    """The store, counting the directory's reads (a fake of the directory's port that
    delegates to the real store)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.generations = 0
        self.loads = 0

    async def tenant_generation(self) -> int:
        self.generations += 1
        return await self.store.tenant_generation()

    async def list_tenant_settings(self) -> list[TenantSettings]:
        self.loads += 1
        return await self.store.list_tenant_settings()

    async def dkim_keys(self) -> list[DkimKeyRow]:
        return await self.store.dkim_keys()

    async def webhook_tenants(self) -> frozenset[str]:
        return await self.store.webhook_tenants()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "gateway.db")
    await opened.open()
    try:
        await opened.ensure_tenant(Tenant("acme", ("acme.example",), hourly_quota=10))
        yield opened
    finally:
        await opened.close()


async def test_a_fresh_snapshot_costs_nothing_and_an_old_one_one_counter_read(
    store: SqliteStore,
) -> None:
    counting, clock = Counting(store), Clock()
    directory = TenantDirectory(counting, expiry=1.0, monotonic=clock)
    assert (await directory.tenant("acme")).hourly_quota == 10
    assert (counting.generations, counting.loads) == (1, 1)
    clock.now += 0.9
    for _ in range(5):
        assert (await directory.tenant("acme")).allowed_sender_domains == ("acme.example",)
    assert (counting.generations, counting.loads) == (1, 1)
    clock.now += 0.2  # past the expiry, nothing changed: the counter only
    await asyncio.gather(*(directory.tenant("acme") for _ in range(20)))
    assert (counting.generations, counting.loads) == (2, 1)


async def test_a_change_by_anyone_is_seen_after_the_expiry(
    store: SqliteStore, tmp_path: Path
) -> None:
    clock = Clock()
    directory = TenantDirectory(store, expiry=1.0, monotonic=clock)
    assert (await directory.tenant("acme")).hourly_quota == 10
    elsewhere = SqliteStore(tmp_path / "gateway.db")  # another process on the same file
    await elsewhere.open()
    try:
        await elsewhere.update_tenant_settings("acme", {"hourly_quota": 3})
    finally:
        await elsewhere.close()
    assert (await directory.tenant("acme")).hourly_quota == 10  # within the expiry
    clock.now += 1.0
    assert (await directory.tenant("acme")).hourly_quota == 3
    # A tenant never stored is one without settings, as the intake has always seen it.
    assert await directory.tenant("walk-in") == Tenant("walk-in")
    assert await directory.settings("walk-in") is None


async def test_invalidate_reloads_at_the_next_look_up(store: SqliteStore) -> None:
    counting, clock = Counting(store), Clock()
    directory = TenantDirectory(counting, expiry=1.0, monotonic=clock)
    await directory.tenant("acme")
    await store.update_tenant_settings("acme", {"allowed_sender_domains": ("new.example",)})
    directory.invalidate()
    assert (await directory.tenant("acme")).allowed_sender_domains == ("new.example",)
    assert counting.loads == 2


async def test_a_failing_store_leaves_the_last_snapshot_in_use(
    store: SqliteStore, tmp_path: Path
) -> None:
    clock = Clock()
    directory = TenantDirectory(store, expiry=1.0, monotonic=clock)
    assert (await directory.tenant("acme")).hourly_quota == 10
    await store.close()  # every read now fails with StoreUnavailable
    clock.now += 5
    directory.invalidate()
    assert (await directory.tenant("acme")).hourly_quota == 10
    never_loaded = TenantDirectory(store, expiry=1.0, monotonic=clock)
    with pytest.raises(StoreError):
        await never_loaded.tenant("acme")
    await store.open()  # the fixture closes it again


async def test_a_tenant_created_elsewhere_is_found_at_once(
    store: SqliteStore, tmp_path: Path
) -> None:
    clock = Clock()
    directory = TenantDirectory(store, expiry=1.0, monotonic=clock)
    await directory.tenant("acme")
    elsewhere = SqliteStore(tmp_path / "gateway.db")
    await elsewhere.open()
    try:
        await elsewhere.ensure_tenant(Tenant("fresh", ("fresh.example",)))
    finally:
        await elsewhere.close()
    # Within the expiry, but an unknown name makes the directory look at the counter.
    assert (await directory.tenant("fresh")).allowed_sender_domains == ("fresh.example",)


async def test_signing_and_the_policy_follow_the_directory(
    store: SqliteStore, tmp_path: Path
) -> None:
    clock = Clock()
    directory = TenantDirectory(store, expiry=1.0, monotonic=clock)
    signer = DkimSigner(directory)
    policy = PolicyApplier(store, PolicySettings(failure_threshold=3), SystemClock(), directory)
    await signer.refresh()
    content = b"From: App <app@acme.example>\r\nSubject: x\r\n\r\nbody\r\n"
    assert await signer("acme", content) == b""
    assert (await policy.settings_for("acme")).failure_threshold == 3

    key, _ = keygen("acme.example", "s1", "ed25519-sha256")
    elsewhere = SqliteStore(tmp_path / "gateway.db")  # another process on the same file
    await elsewhere.open()
    try:
        await elsewhere.set_dkim_key(
            "acme", key.domain, key.selector, key.algorithm, key.private_key_pem
        )
        await elsewhere.update_tenant_settings("acme", {"failure_threshold": 1})
    finally:
        await elsewhere.close()
    clock.now += 1.0
    await signer.refresh()
    assert (await signer("acme", content)).startswith(b"DKIM-Signature: ")
    assert (await policy.settings_for("acme")).failure_threshold == 1
    assert (await policy.settings_for("other")).failure_threshold == 3
