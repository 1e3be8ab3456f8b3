"""Suppression import and export (issue 16 item 7), written once for both stores.

Owns: one page of an export (keyset on the key ``(tenant, address, scope)``, filters in
SQL) and one
batch of an import (read the batch's stored rows, upsert what differs, in one
transaction; a dry run only reads). Does not own: the CSV (``admin.suppression_csv``) or
the batching (the caller sends a few hundred rows at a time, so memory stays bounded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.core.model import Suppression
from gateway.core.records import AuditOf
from gateway.core.transfer import ImportCounts, SuppressionExport
from gateway.store import rows
from gateway.store.mixins import Queries
from gateway.store.sql import Script, many
from gateway.store.sql import rows as fetch
from gateway.store.writes import UPSERT_SUPPRESSION, audited, suppression_values


def _key(s: Suppression) -> tuple[str, str, str]:
    """A suppression's identity, the table's primary key: (tenant, address, scope)."""
    return (s.tenant, s.address, s.scope.value)


def _same(old: Suppression, new: Suppression) -> bool:
    """Whether importing ``new`` over ``old`` would change nothing that matters: the
    reason and the expiry (the date and note of the first block are kept)."""
    return old.reason == new.reason and old.expires_at == new.expires_at


class SuppressionTransfer(Queries):
    """The ``SuppressionTransfer`` port (``core.ports``)."""

    async def export_suppressions(
        self, where: SuppressionExport, limit: int, after: tuple[str, str, str] | None
    ) -> list[Suppression]:
        """Up to ``limit`` suppressions after the key ``after`` (tenant, address, scope), in
        key order (the primary key's: each page is an index range)."""
        sql = f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions WHERE 1 = 1"
        args: list[Any] = []
        if after is not None:
            sql += " AND (tenant, address, scope) > (?, ?, ?)"  # row values, as the key
            args += list(after)
        if where.tenant is not None:
            sql += " AND tenant = ?"
            args.append(where.tenant)
        if where.reason is not None:
            sql += " AND reason = ?"
            args.append(where.reason.value)
        if where.scope is not None:
            sql += " AND scope = ?"
            args.append(where.scope.value)
        if where.since is not None:
            sql += " AND since >= ?"
            args.append(rows.ts(where.since))
        if where.until is not None:
            sql += " AND since < ?"
            args.append(rows.ts(where.until))
        sql += " ORDER BY tenant, address, scope LIMIT ?"

        def script() -> Script[list[Suppression]]:
            found = yield fetch(sql, *args, limit)
            return [rows.suppression_from(r) for r in found]

        return await self._query(script())

    async def import_suppressions(
        self,
        batch: Sequence[Suppression],
        *,
        dry_run: bool = False,
        audit: AuditOf | None = None,
    ) -> ImportCounts:
        """Add or update ``batch`` (one row per key: the caller keeps the last of a batch's
        duplicates) in one transaction; a dry run reads and counts only. ``audit`` (the
        import's entry, built from this batch's counts) commits with the last batch."""
        dialect = self.dialect

        def script() -> Script[ImportCounts]:
            stored: dict[tuple[str, str, str], Suppression] = {}
            by_tenant: dict[str, set[str]] = {}
            for s in batch:
                by_tenant.setdefault(s.tenant, set()).add(s.address)
            for tenant, addresses in sorted(by_tenant.items()):
                # tenant = ? AND address IN (…): a range of the primary key, not a scan.
                for chunk in dialect.chunks(sorted(addresses)):
                    clause, args = dialect.among("address", chunk)
                    found = yield fetch(
                        f"SELECT {rows.SUPPRESSION_COLUMNS} FROM suppressions"
                        f" WHERE tenant = ? AND {clause}",
                        tenant,
                        *args,
                    )
                    for r in found:
                        s = rows.suppression_from(r)
                        stored[_key(s)] = s
            added = updated = unchanged = 0
            write: list[tuple[Any, ...]] = []
            for s in batch:
                old = stored.get(_key(s))
                if old is not None and _same(old, s):
                    unchanged += 1
                    continue
                if old is None:
                    added += 1
                else:
                    updated += 1
                write.append(suppression_values(s))
            counts = ImportCounts(added, updated, unchanged)
            if write and not dry_run:
                yield many(UPSERT_SUPPRESSION, write)
            if not dry_run:
                yield from audited(audit, counts)
            return counts

        if dry_run:
            return await self._query(script())
        return await self._transact(script())
