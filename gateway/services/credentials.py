"""Tenant SMTP credentials: generation, scrypt hashing, constant-time verification.

Owns: the stored hash format (``scrypt$N$r$p$salt$hash``, base64), shared by the SMTP
intake (which verifies), the admin API and the CLI (which create and rotate). Does not own:
where hashes are stored (``store``), the AUTH dialogue (``smtp_in``) or throttling.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

# scrypt, RFC 7914 parameters: N=2**14, r=8, p=1 costs ~16 MiB and tens of ms per check.
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


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


async def new_credentials() -> tuple[str, str]:
    """A new secret and its hash; scrypt runs off the event loop."""
    secret = generate_secret()
    return secret, await asyncio.to_thread(hash_secret, secret)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
