"""The store's ports for the admin API's own tables: tenant-scoped tokens (issue 16 item 2)
and suppression import and export (issue 16 item 7).

Owns: those two contracts; ``core.ports.Store`` includes them (and re-exports them), so
every store adapter implements them and ``observe.delegate`` restates them. Kept apart from
``core.ports`` only for that module's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from gateway.core.access import TenantToken
from gateway.core.model import Suppression
from gateway.core.records import AuditOf
from gateway.core.transfer import ImportCounts, SuppressionExport


class SuppressionTransfer(Protocol):
    """Suppression import and export (issue 16 item 7), a page or a batch at a time."""

    async def export_suppressions(
        self, where: SuppressionExport, limit: int, after: tuple[str, str, str] | None
    ) -> list[Suppression]:
        """Up to ``limit`` suppressions after the key (tenant, address, scope), in key
        order."""
        ...

    async def import_suppressions(
        self,
        batch: Sequence[Suppression],
        *,
        dry_run: bool = False,
        audit: AuditOf | None = None,
    ) -> ImportCounts:
        """Add or update a batch in one transaction (a dry run only counts)."""
        ...


class TenantTokens(Protocol):
    """Tenant-scoped admin tokens (issue 16 item 2): only their SHA-256 is stored."""

    async def create_tenant_token(
        self, token: TenantToken, *, audit: AuditOf | None = None
    ) -> None: ...

    async def tenant_token_by_digest(self, digest: str) -> TenantToken | None:
        """The unrevoked token whose SHA-256 (hex) is ``digest``."""
        ...

    async def list_tenant_tokens(self, tenant: str) -> list[TenantToken]: ...

    async def revoke_tenant_token(
        self, tenant: str, token_id: str, now: datetime, *, audit: AuditOf | None = None
    ) -> bool: ...
