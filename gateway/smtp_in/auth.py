"""SMTP credentials: scrypt hashes, constant-time checks, and brute-force throttling.

Owns: how a tenant's secret is generated, hashed and verified, and the per-client failure
counter behind ``535`` then ``421 4.7.0``. Does not own: where hashes are stored (``store``)
or the AUTH dialogue (``smtp_in.handler``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from datetime import datetime, timedelta

# scrypt, RFC 7914 parameters: N=2**14, r=8, p=1 costs ~16 MiB and tens of ms per check.
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024
_MAX_TRACKED_CLIENTS = 10_000


def generate_secret() -> str:
    """A new random SMTP password (shown once, never stored in clear)."""
    return secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) of ``secret``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_secret(secret: bytes, stored: str) -> bool:
    """Constant-time comparison of ``secret`` against a stored scrypt hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret, salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAXMEM
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


_dummy: list[str] = []


def _dummy_hash() -> str:
    # A valid hash of a random secret: checking unknown users against it costs the same time
    # as checking a real one, so response time does not reveal which user names exist.
    if not _dummy:
        _dummy.append(hash_secret(secrets.token_urlsafe(16)))
    return _dummy[0]


async def verify_async(secret: bytes, stored: str | None) -> bool:
    """``verify_secret`` off the event loop (scrypt is deliberately slow)."""
    return await asyncio.to_thread(verify_secret, secret, stored or _dummy_hash()) and bool(stored)


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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
