"""Per-tenant shaping of what the relay sends: ``List-Unsubscribe`` and bounce notices.

Owns: the tenant options the relay needs (taken from the tenant directory, which sees a
change on any node within about a second), the unsubscribe headers prepended per
recipient, and whether a final failure is reported to the envelope sender by mail. Does
not own: the header text (``core.unsubscribe``), the notice bytes (``core.notice``) or the
tenant settings (``gateway.services.tenants``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.core import verp
from gateway.core.errors import StoreError
from gateway.core.streams import Stream
from gateway.core.unsubscribe import unsubscribe_headers
from gateway.mail.rawmail import header_block, value
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from gateway.config import BounceConfig
    from gateway.services.tenants import TenantDirectory, TenantSnapshot

log = logging.getLogger("gateway.relay")


@dataclass(frozen=True, slots=True)
class TenantOptions:
    list_unsubscribe: bool = False
    bounce_notice: bool = False


_DEFAULT = TenantOptions()


class Shaper:
    """Tenant options and the headers they add.

    Args:
        tenants: the tenant directory.
        bounce: the ``[bounce]`` section (domain and key of unsubscribe tokens).
        base_url: ``public.base_url`` for the one-click URL; empty for mailto only.
    """

    def __init__(self, tenants: TenantDirectory, bounce: BounceConfig, base_url: str) -> None:
        self.tenants = tenants
        self.bounce = bounce
        self.base_url = base_url
        self.secret = bounce.secret.encode()
        self._options: dict[str, TenantOptions] = {}
        self._snapshot: TenantSnapshot | None = None

    async def refresh(self, *, force: bool = False) -> None:
        """Take the directory's current snapshot (no I/O while it is fresh); ``force``
        reads the store's change counter now."""
        try:
            snapshot = await self.tenants.snapshot(recheck=force)
        except StoreError as exc:  # no snapshot yet: keep the last options, try next time
            log_event(log, "relay.tenant_options_failed", logging.WARNING, error=str(exc))
            return
        if snapshot is not self._snapshot:
            self._options = {
                name: TenantOptions(s.list_unsubscribe, s.bounce_notice)
                for name, s in snapshot.settings.items()
            }
            self._snapshot = snapshot

    def options(self, tenant: str) -> TenantOptions:
        return self._options.get(tenant, _DEFAULT)

    def per_recipient(self, tenant: str, stream: Stream = Stream.MARKETING) -> bool:
        """One transaction per recipient: the unsubscribe header differs per recipient (a
        marketing message of a tenant with ``list_unsubscribe``; issue 15)."""
        return self.options(tenant).list_unsubscribe and stream is Stream.MARKETING

    def headers_for(
        self, tenant: str, address: str, content: bytes, stream: Stream = Stream.TRANSACTIONAL
    ) -> bytes:
        """Headers to prepend for this recipient (empty when none apply).

        Only a marketing message gets ``List-Unsubscribe`` (issue 15): an invoice's recipient
        cannot opt out of invoices, and an opt-out it caused would stop only marketing
        anyway. An application that set its own ``List-Unsubscribe`` keeps it: two would
        confuse mailbox providers.
        """
        if not self.options(tenant).list_unsubscribe or stream is not Stream.MARKETING:
            return b""
        if value(header_block(content), b"list-unsubscribe") is not None:
            return b""
        token = verp.make_unsubscribe_token(tenant, address, self.secret)
        return unsubscribe_headers(token, self.bounce.domain, self.base_url)
