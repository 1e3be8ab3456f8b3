"""Suppression import and export (issue 16 item 7): the records the store exchanges.

Owns: the export's filter and the import's counts. Does not own: reading or writing CSV
(``admin.suppression_csv``) or the queries (``store.suppression_transfer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.core.model import SuppressionReason
from gateway.core.streams import Scope


@dataclass(frozen=True, slots=True)
class SuppressionExport:
    """Which suppressions an export lists (every field ``None``: all of them).

    Args:
        tenant: one tenant.
        reason: one reason.
        scope: one scope (``core.streams.Scope``).
        since: suppressed at or after.
        until: suppressed before.
    """

    tenant: str | None = None
    reason: SuppressionReason | None = None
    scope: Scope | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What one batch of an import changed (or, in a dry run, would change).

    Args:
        added: suppressions that were not there.
        updated: suppressions there (same tenant, address and scope) with another reason
            or expiry.
        unchanged: suppressions there already as the row says (an import run twice).
    """

    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: ImportCounts) -> ImportCounts:
        return ImportCounts(
            self.added + other.added,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )
