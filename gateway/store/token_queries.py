"""Tenant-scoped admin tokens (issue 16 item 2), written once for both stores.

Owns: storing a new token's digest with its audit entry in one transaction, finding a
token by its digest, listing a tenant's tokens and revoking one (with its audit entry).
Does not own: making the token or comparing it (``admin.tokens``, ``admin.scope``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.core.access import Access, TenantToken
from gateway.core.records import AuditOf
from gateway.store import rows
from gateway.store.mixins import Queries
from gateway.store.sql import Script, count, every, one
from gateway.store.writes import audited

_COLUMNS = "token_id, tenant, access, digest, created_at, created_by, note, revoked_at"


def _token_from(found: Any) -> TenantToken:
    created = rows.dt(found[4])
    assert created is not None  # NOT NULL column
    return TenantToken(
        token_id=found[0],
        tenant=found[1],
        access=Access(found[2]),
        digest=found[3],
        created_at=created,
        created_by=found[5],
        note=found[6],
        revoked_at=rows.dt(found[7]),
    )


class TokenQueries(Queries):
    """The ``TenantTokens`` port (``core.ports``)."""

    async def create_tenant_token(
        self, token: TenantToken, *, audit: AuditOf | None = None
    ) -> None:
        """Store ``token`` (its digest only) and its audit entry in one transaction."""

        def script() -> Script[None]:
            yield count(
                f"INSERT INTO tenant_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                token.token_id,
                token.tenant,
                token.access.value,
                token.digest,
                rows.ts(token.created_at),
                token.created_by,
                token.note,
                rows.ts(token.revoked_at),
            )
            yield from audited(audit, token)

        await self._transact(script())

    async def tenant_token_by_digest(self, digest: str) -> TenantToken | None:
        """The unrevoked token whose SHA-256 (hex) is ``digest``, or ``None``."""
        found = await self._query(
            one(
                f"SELECT {_COLUMNS} FROM tenant_tokens WHERE digest = ? AND revoked_at IS NULL",
                digest,
            )
        )
        return None if found is None else _token_from(found)

    async def list_tenant_tokens(self, tenant: str) -> list[TenantToken]:
        """A tenant's tokens, revoked ones too, oldest first."""
        found = await self._query(
            every(
                f"SELECT {_COLUMNS} FROM tenant_tokens WHERE tenant = ?"
                " ORDER BY created_at, token_id@C",
                tenant,
            )
        )
        return [_token_from(r) for r in found]

    async def revoke_tenant_token(
        self, tenant: str, token_id: str, now: datetime, *, audit: AuditOf | None = None
    ) -> bool:
        """Revoke the tenant's unrevoked token ``token_id``; whether there was one. The
        audit entry (built from that bool) commits with it."""

        def script() -> Script[bool]:
            n: int = yield count(
                "UPDATE tenant_tokens SET revoked_at = ? WHERE tenant = ? AND token_id = ?"
                " AND revoked_at IS NULL",
                rows.ts(now),
                tenant,
                token_id,
            )
            yield from audited(audit, n > 0)
            return n > 0

        return await self._transact(script())
