"""Tenant-scoped access tokens, as the store keeps them (issue 16 item 2).

Owns: the ``TenantToken`` record and its ``Access`` levels. Does not own: making or
checking a token (``admin.tokens``, ``admin.scope``) or storing it (``store.token_queries``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Access(enum.StrEnum):
    """What a tenant token may do: ``read`` (GET/HEAD) or ``write`` (everything its tenant
    may do; never the admin-only routes)."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class TenantToken:
    """A token bound to one tenant; the store holds only the SHA-256 of the secret.

    Args:
        token_id: the public id (listed, revoked by, recorded as the audit actor).
        tenant: the tenant whose data the token sees.
        access: read or write.
        digest: hex SHA-256 of the token.
        created_at: when it was made.
        created_by: the actor (an admin) who made it.
        note: a free label given at creation.
        revoked_at: when it was revoked, or ``None`` while valid.
    """

    token_id: str
    tenant: str
    access: Access
    digest: str
    created_at: datetime
    created_by: str
    note: str = ""
    revoked_at: datetime | None = None
