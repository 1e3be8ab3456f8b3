"""DKIM signing of outgoing mail with the tenant's key for the ``From:`` domain.

Owns: which key signs which message (tenant + ``From:`` domain), keeping the keys in memory
(refreshed from the store every minute), and building the header to prepend. Does not own:
the signature itself (``gateway.dkim``) or when it is applied (``relay``).

A signature runs in a worker thread: hashing a large body and the RSA operation would
otherwise hold the event loop (every SMTP session, every delivery) for tens of milliseconds
(issue 13). Mail without a key costs no hop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from gateway.core.errors import StoreError
from gateway.dkim import DkimKey, sign
from gateway.logging import log_event
from gateway.rawmail import from_domain, header_block


class DkimKeyStore(Protocol):
    async def dkim_keys(self) -> list[tuple[str, str, str, str, bytes]]: ...


log = logging.getLogger("gateway.signing")

_REFRESH_SECONDS = 60.0


class DkimSigner:
    """``await signer(tenant, content) -> header bytes`` (empty when no key applies).

    Args:
        store: where keys live (``gateway dkim keygen --tenant``).
    """

    def __init__(self, store: DkimKeyStore) -> None:
        self.store = store
        self._keys: dict[tuple[str, str], DkimKey] = {}
        self._loaded_at = float("-inf")

    async def refresh(self, *, force: bool = False) -> None:
        """Reload the keys when older than a minute (cheap otherwise)."""
        if not force and time.monotonic() - self._loaded_at < _REFRESH_SECONDS:
            return
        keys = {}
        try:
            stored = await self.store.dkim_keys()
        except StoreError as exc:
            # Keep signing with the keys we have; the next job tries the store again.
            log_event(log, "dkim.reload_failed", logging.WARNING, error=str(exc))
            return
        for tenant, domain, selector, algorithm, pem in stored:
            try:
                keys[(tenant, domain)] = DkimKey(domain, selector, pem, algorithm)
            except ValueError as exc:
                log_event(
                    log, "dkim.bad_key", logging.ERROR, tenant=tenant, domain=domain, error=str(exc)
                )
        self._keys = keys
        self._loaded_at = time.monotonic()

    async def __call__(self, tenant: str, content: bytes) -> bytes:
        if not self._keys:
            return b""
        domain = from_domain(header_block(content))
        key = self._keys.get((tenant, domain or ""))
        if key is None:
            return b""
        return await asyncio.to_thread(sign, content, key)
