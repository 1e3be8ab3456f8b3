"""The tenant directory: one view of the tenants per process, kept fresh on every node.

Owns: the tenants' settings and DKIM keys in memory for everything in a process that needs
them — the intake (sender domains, quotas), the relay's shaping (``List-Unsubscribe``,
bounce notices), DKIM signing and the auto-block policy — and noticing a change made
anywhere: this process's admin API, the ``gateway`` command, another process on the same
SQLite file, another node on PostgreSQL. Does not own: storing or validating settings
(``store``, ``admin.tenants``), nor what each part does with them.

How a change is noticed: every write to tenants, credentials or DKIM keys moves a counter in
its own transaction (``tenant_generation``, kept by triggers of migration 006, whoever
writes). A snapshot older than ``expiry`` (a second) is checked against the counter — one
one-row query, shared by every caller waiting at that moment — and reloaded whole when the
counter moved. So a change reaches every part of every node about a second after its
commit, and a process that made it itself sees it at once (``invalidate``). If the store
cannot be read, the last snapshot stays in use and the check is tried again one expiry
later; without any snapshot the error reaches the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.core.errors import StoreError
from gateway.core.model import Tenant
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from gateway.core.ports import TenantStore
    from gateway.core.records import TenantSettings

log = logging.getLogger("gateway.services.tenants")

#: Seconds a snapshot is used before the store's counter is read again.
EXPIRY = 1.0

DkimKeyRow = tuple[str, str, str, str, bytes]
"""(tenant, domain, selector, algorithm, private key PEM), as ``Store.dkim_keys`` gives them."""


@dataclass(frozen=True, slots=True)
class TenantSnapshot:
    """Every tenant's settings and DKIM keys as of one value of the counter."""

    generation: int
    settings: Mapping[str, TenantSettings] = field(default_factory=dict)
    dkim_keys: tuple[DkimKeyRow, ...] = ()
    endpoints: frozenset[str] = frozenset()  # tenants with a webhook endpoint

    def tenant(self, name: str) -> Tenant:
        """The tenant, or one without settings when the store has none by that name (the
        default tenant before anything was stored, as the intake has always treated it)."""
        found = self.settings.get(name)
        return Tenant(name) if found is None else found.tenant


class TenantDirectory:
    """The process's tenant directory (see the module docstring).

    Args:
        store: where tenants live.
        expiry: seconds a snapshot is used before the counter is read again.
        monotonic: the clock for ``expiry`` (a fake one in tests).
    """

    def __init__(
        self,
        store: TenantStore,
        expiry: float = EXPIRY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.expiry = expiry
        self.monotonic = monotonic
        self._snapshot: TenantSnapshot | None = None
        self._checked_at = float("-inf")
        self._checks = 0  # counter reads done (or failed): who waited for the lock sees it
        # Invalidations asked for and those a completed reload has taken in: while they
        # differ, a caller waits for a reload rather than take the snapshot in memory (a check
        # already under way when the change was made may have read the store before it).
        self._wanted = 1
        self._done = 0
        self._failing = False  # the last check failed: wait ``expiry`` before the next
        self._lock = asyncio.Lock()
        self.reloads = 0

    def invalidate(self) -> None:
        """Reload at the next look-up (this process has just changed a tenant)."""
        self._wanted += 1

    async def endpoint_tenants(self) -> frozenset[str]:
        """The tenants with a webhook endpoint, as the current snapshot has them (the
        webhook outbox writes only their events).

        Raises:
            StoreError: the store failed and there is no snapshot yet.
        """
        return (await self.snapshot()).endpoints

    async def snapshot(self, *, recheck: bool = False) -> TenantSnapshot:
        """The current snapshot: the one in memory while younger than ``expiry`` (no I/O),
        else checked against the store's counter first.

        Args:
            recheck: read the counter now whatever the snapshot's age (tests, and a relay
                that was told to refresh).

        Raises:
            StoreError: the store failed and there is no snapshot yet.
        """
        current = self._snapshot
        if current is not None and not recheck and not self._due(self.monotonic()):
            return current
        checks = self._checks
        async with self._lock:
            current = self._snapshot
            # Someone else read the counter while we waited for the lock: that answer is
            # as fresh as ours would be.
            if current is not None and self._wanted == self._done and self._checks > checks:
                return current
            return await self._check(current)

    async def tenant(self, name: str) -> Tenant:
        """The tenant by name (one without settings when none is stored).

        A name the snapshot does not know costs a read of the counter first: a tenant just
        created on another node must not send for a second without its settings (allowed
        sender domains, quotas).
        """
        snapshot = await self.snapshot()
        if name not in snapshot.settings:
            snapshot = await self.snapshot(recheck=True)
        return snapshot.tenant(name)

    async def settings(self, name: str) -> TenantSettings | None:
        """The tenant's stored settings, or ``None``."""
        return (await self.snapshot()).settings.get(name)

    def _due(self, now: float) -> bool:
        stale = self._wanted != self._done
        return (stale and not self._failing) or now - self._checked_at >= self.expiry

    async def _check(self, current: TenantSnapshot | None) -> TenantSnapshot:
        wanted = self._wanted
        reload = wanted != self._done
        try:
            generation = await self.store.tenant_generation()
            if current is None or reload or generation != current.generation:
                settings = await self.store.list_tenant_settings()
                keys = await self.store.dkim_keys()
                endpoints = await self.store.webhook_tenants()
                current = TenantSnapshot(
                    generation, {s.tenant.name: s for s in settings}, tuple(keys), endpoints
                )
                self._snapshot = current
                self.reloads += 1
            self._failing = False
            self._done = max(self._done, wanted)  # invalidations since stay wanted
        except StoreError as exc:
            self._failing = True
            self._checked_at = self.monotonic()
            self._checks += 1
            if current is None:
                raise
            log_event(log, "tenants.reload_failed", logging.WARNING, error=str(exc))
            return current
        self._checked_at = self.monotonic()
        self._checks += 1
        return current
