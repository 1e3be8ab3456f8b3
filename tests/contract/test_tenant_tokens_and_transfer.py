"""The store's tenant-token and suppression-transfer ports (issue 16 items 2 and 7) on both
stores: a token found by its digest until it is revoked, each write with its audit entry in
its transaction; an import batch counted and written (a dry run counted only), an export
paged on the primary key with its filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.access import Access, TenantToken
from gateway.core.model import Suppression, SuppressionReason, Tenant
from gateway.core.ports import Store
from gateway.core.records import AuditEntry
from gateway.core.streams import Scope
from gateway.core.transfer import ImportCounts, SuppressionExport

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _entry(action: str) -> AuditEntry:
    return AuditEntry(NOW, "admin123", action, "acme", {})


async def test_tenant_tokens(store: Store) -> None:
    await store.ensure_tenant(Tenant("acme"))
    token = TenantToken("t1", "acme", Access.READ, "ab" * 32, NOW, "admin123", "desk")
    await store.create_tenant_token(token, audit=lambda _: _entry("tenant.token.create"))
    assert await store.tenant_token_by_digest("ab" * 32) == token
    assert await store.tenant_token_by_digest("cd" * 32) is None
    later = NOW + timedelta(hours=1)
    assert not await store.revoke_tenant_token("other", "t1", later)  # another tenant's id
    assert await store.revoke_tenant_token(
        "acme", "t1", later, audit=lambda done: _entry("tenant.token.revoke") if done else None
    )
    assert not await store.revoke_tenant_token("acme", "t1", later)
    assert await store.tenant_token_by_digest("ab" * 32) is None
    [listed] = await store.list_tenant_tokens("acme")
    assert listed.revoked_at == later
    actions = [e.action for e in await store.list_audit(10, None)]
    assert actions == ["tenant.token.revoke", "tenant.token.create"]


def _s(address: str, reason: SuppressionReason, scope: Scope = Scope.ALL) -> Suppression:
    return Suppression("acme", address, reason, NOW, None, None, "imported", scope)


async def test_import_batches_and_export_pages(store: Store) -> None:
    batch = [
        _s("a@example.com", SuppressionReason.COMPLAINT),
        _s("a@example.com", SuppressionReason.OPT_OUT, Scope.MARKETING),
        _s("b@example.com", SuppressionReason.MANUAL),
    ]
    assert await store.import_suppressions(batch, dry_run=True) == ImportCounts(3, 0, 0)
    assert await store.export_suppressions(SuppressionExport(), 10, None) == []
    counts = await store.import_suppressions(
        batch, audit=lambda c: AuditEntry(NOW, "x", "suppression.import", "acme", {"n": c.added})
    )
    assert counts == ImportCounts(3, 0, 0)
    changed = [_s("b@example.com", SuppressionReason.NONEXISTENT_ADDRESS), *batch[:2]]
    assert await store.import_suppressions(changed) == ImportCounts(0, 1, 2)
    [entry] = await store.list_audit(10, None)
    assert entry.detail == {"n": 3}
    # Pages of one row, resumed after the last key: every row once, in key order.
    seen: list[tuple[str, str]] = []
    after: tuple[str, str, str] | None = None
    for _ in range(10):
        page = await store.export_suppressions(SuppressionExport(), 1, after)
        if not page:
            break
        seen += [(s.address, s.scope.value) for s in page]
        after = (page[-1].tenant, page[-1].address, page[-1].scope.value)
    assert seen == [
        ("a@example.com", "all"),
        ("a@example.com", "marketing"),
        ("b@example.com", "all"),
    ]
    complaint = SuppressionExport(reason=SuppressionReason.COMPLAINT)
    assert [s.address for s in await store.export_suppressions(complaint, 10, None)] == [
        "a@example.com"
    ]
    marketing = SuppressionExport(scope=Scope.MARKETING, tenant="acme")
    assert len(await store.export_suppressions(marketing, 10, None)) == 1
    window = SuppressionExport(since=NOW + timedelta(seconds=1))
    assert await store.export_suppressions(window, 10, None) == []
