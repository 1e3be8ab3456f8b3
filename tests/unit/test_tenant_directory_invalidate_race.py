"""An ``invalidate`` while another look-up is already reloading (issue 15's hold scenario
found it): the caller after the invalidation must get the change, not the snapshot the
reload under way read before the change was committed."""

from __future__ import annotations

import asyncio

from gateway.core.model import Tenant
from gateway.core.records import TenantSettings
from gateway.core.tenant_policy import SuppressedAction, TenantPolicy
from gateway.services.tenants import DkimKeyRow, TenantDirectory


class SlowStore:
    """A tenant store whose settings read can be held while the data changes under it."""

    def __init__(self) -> None:
        self.action = SuppressedAction.REFUSE
        self.generation = 1
        self.gate = asyncio.Event()
        self.gate.set()
        self.reading = asyncio.Event()

    async def tenant_generation(self) -> int:
        return self.generation

    async def list_tenant_settings(self) -> list[TenantSettings]:
        seen = self.action  # what the store held when the read began
        self.reading.set()
        await self.gate.wait()
        return [TenantSettings(Tenant("t1", policy=TenantPolicy(suppressed_action=seen)))]

    async def dkim_keys(self) -> list[DkimKeyRow]:
        return []

    async def webhook_tenants(self) -> frozenset[str]:
        return frozenset()


async def test_a_look_up_during_the_reload_an_invalidate_started_waits_for_it() -> None:
    store = SlowStore()
    clock = [1000.0]
    directory = TenantDirectory(store, expiry=1.0, monotonic=lambda: clock[0])  # type: ignore[arg-type]
    first = await directory.tenant("t1")
    assert first.policy.suppressed_action is SuppressedAction.REFUSE
    # This process changes the tenant and invalidates; a background look-up (the relay's
    # shaping, the webhook outbox) starts the reload and is held in the read.
    store.action = SuppressedAction.HOLD
    store.generation = 2
    directory.invalidate()
    store.gate.clear()
    store.reading.clear()
    background = asyncio.create_task(directory.snapshot())
    await asyncio.wait_for(store.reading.wait(), 5)
    # The intake's look-up now must not take the snapshot in memory (before the change).
    looked_up = asyncio.create_task(directory.tenant("t1"))
    await asyncio.sleep(0.05)
    assert not looked_up.done()
    store.gate.set()
    await asyncio.wait_for(background, 5)
    tenant = await asyncio.wait_for(looked_up, 5)
    assert tenant.policy.suppressed_action is SuppressedAction.HOLD
