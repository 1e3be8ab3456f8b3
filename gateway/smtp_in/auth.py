"""Brute-force throttling of SMTP AUTH: ``535`` then ``421 4.7.0``.

Owns: the per-client failure counter. Does not own: the hash format and verification
(``gateway.services.credentials``) or the AUTH dialogue (``smtp_in.handler``).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta

_MAX_TRACKED_CLIENTS = 10_000


class AuthThrottle:
    """Counts AUTH failures per client address within a window (bounded memory)."""

    def __init__(self, max_failures: int, window: timedelta) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: OrderedDict[str, list[datetime]] = OrderedDict()

    def _recent(self, client: str, now: datetime) -> list[datetime]:
        times = [t for t in self._failures.get(client, []) if now - t < self.window]
        if times:
            self._failures[client] = times
        else:
            self._failures.pop(client, None)
        return times

    def blocked(self, client: str, now: datetime) -> bool:
        return len(self._recent(client, now)) >= self.max_failures

    def fail(self, client: str, now: datetime) -> bool:
        """Record a failure; true when the client has now reached the limit."""
        times = self._recent(client, now)
        times.append(now)
        self._failures[client] = times
        self._failures.move_to_end(client)
        while len(self._failures) > _MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)
        return len(times) >= self.max_failures

    def succeed(self, client: str) -> None:
        self._failures.pop(client, None)
