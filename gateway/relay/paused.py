"""The tenant pause (issue 15 item 4) for the mail the relay already holds in memory.

The relay's claims skip a tenant whose delivery is paused, but what it claimed before the
pause waits in its ready queues (up to ``relay.ready_queue_limit`` recipients): without this
gate a bounce storm that paused a tenant would go on with thousands of attempts. Each job
asks before its attempt; the set of paused tenants is read from the store at most once per
``ttl``, so a pause made by any process or node stops this relay's attempts within about a
second. Owns: that cache. Does not own: deciding a pause (``services.pause``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gateway.core.errors import StoreError
from gateway.core.ports import Clock, Store
from gateway.observe.logging import log_event

log = logging.getLogger(__name__)


class PauseGate:
    """Whether a tenant's delivery is paused, from a set read at most once per ``ttl``."""

    def __init__(self, store: Store, clock: Clock, ttl: timedelta = timedelta(seconds=1)):
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self._paused: frozenset[str] = frozenset()
        self._read_at: datetime | None = None

    async def paused(self, tenant: str) -> bool:
        now = self.clock.now()
        if self._read_at is None or not (
            0 <= (now - self._read_at).total_seconds() < self.ttl.total_seconds()
        ):
            try:
                self._paused = await self.store.delivery_paused()
            except StoreError as exc:  # the last set read stands; the claims still skip them
                log_event(log, "relay.pause_read_failed", logging.WARNING, error=str(exc))
            self._read_at = now
        return tenant in self._paused
