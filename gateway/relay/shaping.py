"""Per-tenant shaping of what the relay sends: ``List-Unsubscribe`` and bounce notices.

Owns: the tenant options the relay needs (kept in memory, refreshed every minute from the
store), the unsubscribe headers prepended per recipient, and whether a final failure is
reported to the envelope sender by mail. Does not own: the header text
(``core.unsubscribe``), the notice bytes (``core.notice``) or the tenant settings' storage.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.core import verp
from gateway.core.unsubscribe import unsubscribe_headers
from gateway.logging import log_event
from gateway.rawmail import header_block, value

if TYPE_CHECKING:
    from gateway.config import BounceConfig

log = logging.getLogger("gateway.relay")

_REFRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class TenantOptions:
    list_unsubscribe: bool = False
    bounce_notice: bool = False


_DEFAULT = TenantOptions()


class Shaper:
    """Tenant options and the headers they add.

    Args:
        store: anything with ``list_tenant_settings()`` (the admin queries of the store).
        bounce: the ``[bounce]`` section (domain and key of unsubscribe tokens).
        base_url: ``public.base_url`` for the one-click URL; empty for mailto only.
    """

    def __init__(self, store: Any, bounce: BounceConfig, base_url: str) -> None:
        self.store = store
        self.bounce = bounce
        self.base_url = base_url
        self.secret = bounce.secret.encode()
        self._options: dict[str, TenantOptions] = {}
        self._loaded_at = float("-inf")

    async def refresh(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < _REFRESH_SECONDS:
            return
        loader = getattr(self.store, "list_tenant_settings", None)
        if loader is None:
            return
        try:
            settings = await loader()
        except Exception as exc:  # keep the last good options; tried again next refresh
            log_event(log, "relay.tenant_options_failed", logging.WARNING, error=str(exc))
            return
        self._options = {
            s.tenant.name: TenantOptions(s.list_unsubscribe, s.bounce_notice) for s in settings
        }
        self._loaded_at = time.monotonic()

    def options(self, tenant: str) -> TenantOptions:
        return self._options.get(tenant, _DEFAULT)

    def per_recipient(self, tenant: str) -> bool:
        """One transaction per recipient: the unsubscribe header differs per recipient."""
        return self.options(tenant).list_unsubscribe

    def headers_for(self, tenant: str, address: str, content: bytes) -> bytes:
        """Headers to prepend for this recipient (empty when none apply).

        An application that set its own ``List-Unsubscribe`` keeps it: two would confuse
        mailbox providers.
        """
        if not self.options(tenant).list_unsubscribe:
            return b""
        if value(header_block(content), b"list-unsubscribe") is not None:
            return b""
        token = verp.make_unsubscribe_token(tenant, address, self.secret)
        return unsubscribe_headers(token, self.bounce.domain, self.base_url)
