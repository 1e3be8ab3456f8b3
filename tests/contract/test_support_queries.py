"""Issue 16 items 1, 3 and 4 on every backend: a tenant's sending activity per UTC day, the
overview's aggregates (per tenant, day, type and category; the failing domains and MX hosts;
what waits), and a tenant's texts replaced per language with their audit entry, one
transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from gateway.core.activity import day_starts
from gateway.core.model import Category, Event, EventType, NewMessage, Tenant
from gateway.core.records import AuditEntry

if TYPE_CHECKING:
    from gateway.core.ports import Store

NOW = datetime(2025, 3, 10, 14, 30, tzinfo=UTC)


async def _message(store: Store, queue_id: str, tenant: str, at: datetime, *to: str) -> None:
    await store.enqueue(
        NewMessage(
            queue_id=queue_id,
            tenant=tenant,
            mail_from="billing@app.test",
            recipients=to or ("ana@example.com",),
            content=b"Subject: x\r\n\r\nx\r\n",
            message_id=f"<{queue_id}@app.test>",
            subject="x",
            received_at=at,
        ),
        timedelta(hours=1),
    )


def _event(tenant: str, address: str, kind: EventType, at: datetime, **kw: object) -> Event:
    return Event(None, tenant, address, kind, at, **kw)  # type: ignore[arg-type]  # test rows


async def test_tenant_activity_counts_per_utc_day(store: Store) -> None:
    for name in ("acme", "other"):
        await store.ensure_tenant(Tenant(name))
    # acme: 2 today (one at 06:00, then silence), 1 yesterday, 1 eight days ago (outside).
    await _message(store, "Q1", "acme", NOW.replace(hour=5, minute=59))
    await _message(store, "Q2", "acme", NOW.replace(hour=6, minute=0))
    await _message(store, "Q3", "acme", NOW - timedelta(days=1))
    await _message(store, "Q4", "acme", NOW - timedelta(days=8))
    await _message(store, "Q5", "other", NOW)
    await store.record_event(_event("acme", "x@bad", EventType.REJECTED, NOW))
    await store.record_event(_event("acme", "y@bad", EventType.REJECTED, NOW - timedelta(days=6)))

    starts = day_starts(NOW)
    assert [s.isoformat() for s in starts[:2]] == [
        "2025-03-10T00:00:00+00:00",
        "2025-03-09T00:00:00+00:00",
    ]
    acme = await store.tenant_activity("acme", starts)
    assert acme.last_accepted_at == NOW.replace(hour=6, minute=0)
    assert acme.today == 2
    assert [d.accepted for d in acme.days] == [2, 1, 0, 0, 0, 0, 0]
    assert [d.refused for d in acme.days] == [1, 0, 0, 0, 0, 0, 1]
    every = await store.tenant_activity(None, starts)
    assert every.last_accepted_at == NOW
    assert every.today == 3
    nobody = await store.tenant_activity("nobody", starts)
    assert nobody.last_accepted_at is None
    assert [d.accepted for d in nobody.days] == [0] * 7


async def test_overview_aggregates(store: Store) -> None:
    for name in ("acme", "other"):
        await store.ensure_tenant(Tenant(name))
    await _message(store, "Q1", "acme", NOW, "ana@example.com", "bia@uol.com.br")
    await _message(store, "Q2", "other", NOW - timedelta(days=2), "caio@uol.com.br")
    for address, kind, at, host, tenant in (
        ("ana@example.com", EventType.SENT, NOW, "mx.example.com", "acme"),
        ("bia@uol.com.br", EventType.BOUNCED, NOW, "mx.uol.com.br", "acme"),
        ("bia@uol.com.br", EventType.DEFERRED, NOW - timedelta(hours=1), "mx.uol.com.br", "acme"),
        ("caio@uol.com.br", EventType.DEFERRED, NOW - timedelta(days=2), "mx.uol.com.br", "other"),
        ("dan@gone.example", EventType.BOUNCED, NOW - timedelta(days=9), "mx.gone", "acme"),
    ):
        category = Category.SPAM_BLOCKED if kind is not EventType.SENT else None
        await store.record_event(
            _event(tenant, address, kind, at, remote_host=host, category=category)
        )
    counts = await store.overview(None, day_starts(NOW))
    by = {(t, d, k): n for t, d, k, n in counts.events}
    assert by[("acme", 0, "sent")] == 1
    assert by[("acme", 0, "bounced")] == 1
    assert by[("acme", 0, "deferred")] == 1
    assert by[("other", 2, "deferred")] == 1
    assert by[("acme", 0, "queued")] == 2  # the enqueue's own events
    assert not any(k == "bounced" and t == "acme" and d > 0 for t, d, k in by)  # 9 days ago
    assert sorted(counts.failures) == [
        ("acme", 0, "bounced", "spam_blocked", 1),
        ("acme", 0, "deferred", "spam_blocked", 1),
        ("other", 2, "deferred", "spam_blocked", 1),
    ]
    assert counts.failing_domains[0] == ("uol.com.br", 3)
    assert counts.failing_hosts == [("mx.uol.com.br", 3)]
    waiting = {(t, s): n for t, s, n, _ in counts.waiting}
    assert waiting == {("acme", "queued"): 2, ("other", "queued"): 1}
    only = await store.overview("other", day_starts(NOW))
    assert {t for t, *_ in only.events} == {"other"}
    assert only.failing_domains == [("uol.com.br", 1)]
    assert [(t, s, n) for t, s, n, _ in only.waiting] == [("other", "queued", 1)]


async def test_tenant_texts_replace_a_language_with_its_audit(store: Store) -> None:
    await store.ensure_tenant(Tenant("acme"))
    assert await store.tenant_texts("acme") == {}

    def audit(n: int) -> AuditEntry:
        return AuditEntry(NOW, "admin", "tenant.texts", "acme", {"count": n})

    stored = await store.set_tenant_texts(
        "acme", "pt-BR", {"company_name": "ACME", "message.sent": "Olá {address}"}, NOW,
        audit=audit,
    )  # fmt: skip
    assert stored == 2
    await store.set_tenant_texts("acme", "en", {"company_name": "ACME Inc"}, NOW)
    assert await store.tenant_texts("acme") == {
        "en": {"company_name": "ACME Inc"},
        "pt-BR": {"company_name": "ACME", "message.sent": "Olá {address}"},
    }
    await store.set_tenant_texts("acme", "pt-BR", {"support_channel": "0800"}, NOW, audit=audit)
    assert (await store.tenant_texts("acme"))["pt-BR"] == {"support_channel": "0800"}
    await store.set_tenant_texts("acme", "en", {}, NOW)
    assert list(await store.tenant_texts("acme")) == ["pt-BR"]
    entries = await store.list_audit(10, None)
    assert [(e.action, e.detail["count"]) for e in entries] == [
        ("tenant.texts", 1),
        ("tenant.texts", 2),
    ]
