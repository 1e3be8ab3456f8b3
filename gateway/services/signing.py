"""DKIM signing of outgoing mail with the tenant's key for the ``From:`` domain.

Owns: which key signs which message (tenant + ``From:`` domain), keeping the keys in memory
(from the tenant directory, which sees a key stored on any node within about a second), and
building the header to prepend. Does not own: the signature itself (``gateway.mail.dkim``), when
it is applied (``relay``) or where keys are kept (``gateway.services.tenants``, the store).

A signature runs in a worker thread: hashing a large body and the RSA operation would
otherwise hold the event loop (every SMTP session, every delivery) for tens of milliseconds
(issue 13). Mail without a key costs no hop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gateway.core.errors import StoreError
from gateway.mail.dkim import DkimKey, sign
from gateway.mail.rawmail import from_domain, header_block
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from gateway.services.tenants import DkimKeyRow, TenantDirectory, TenantSnapshot

log = logging.getLogger("gateway.services.signing")


class DkimSigner:
    """``await signer(tenant, content) -> header bytes`` (empty when no key applies).

    Args:
        tenants: the tenant directory (keys stored by ``gateway dkim keygen --tenant``).
    """

    def __init__(self, tenants: TenantDirectory) -> None:
        self.tenants = tenants
        self._keys: dict[tuple[str, str], DkimKey] = {}
        self._parsed: dict[DkimKeyRow, DkimKey] = {}
        self._snapshot: TenantSnapshot | None = None

    async def refresh(self, *, force: bool = False) -> None:
        """Take the directory's current keys (no I/O while its snapshot is fresh); ``force``
        reads the store's change counter now. A key is parsed once, when it first shows."""
        try:
            snapshot = await self.tenants.snapshot(recheck=force)
        except StoreError as exc:
            # No snapshot yet: keep signing with the keys we have; the next job tries again.
            log_event(log, "dkim.reload_failed", logging.WARNING, error=str(exc))
            return
        if snapshot is self._snapshot:
            return
        keys, parsed = {}, {}
        for row in snapshot.dkim_keys:
            tenant, domain, selector, algorithm, pem = row
            key = self._parsed.get(row)
            if key is None:
                try:
                    key = DkimKey(domain, selector, pem, algorithm)
                except ValueError as exc:
                    log_event(
                        log,
                        "dkim.bad_key",
                        logging.ERROR,
                        tenant=tenant,
                        domain=domain,
                        error=str(exc),
                    )
                    continue
            keys[(tenant, domain)] = parsed[row] = key
        self._keys, self._parsed, self._snapshot = keys, parsed, snapshot

    async def __call__(self, tenant: str, content: bytes) -> bytes:
        if not self._keys:
            return b""
        domain = from_domain(header_block(content))
        key = self._keys.get((tenant, domain or ""))
        if key is None:
            return b""
        return await asyncio.to_thread(sign, content, key)
