"""Where the admin API's records used to live, kept for the callers that import them here.

The admin queries are ``store.admin_queries`` (written once for both stores); the records
are ``core.records``. New code imports them from there.
"""

from __future__ import annotations

from gateway.core.records import (
    AuditEntry,
    AuditOf,
    Erasure,
    MessageFilter,
    MessageRow,
    TenantSettings,
    hashed_address,
)

__all__ = [
    "AuditEntry",
    "AuditOf",
    "Erasure",
    "MessageFilter",
    "MessageRow",
    "TenantSettings",
    "hashed_address",
]
