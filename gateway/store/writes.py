"""Row writes every store method shares, as scripts of ``store.sql`` (both dialects).

Owns: inserting an event and an admin audit entry (``audited``: the entry an admin write's
``audit=`` builds, in that write's transaction), upserting a suppression or a login, and
giving an erased address's quota holds back. Each is a script a caller runs inside its own
(``yield from``). Does not own: transactions (the stores) or what the rows mean (``core``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.core.model import Event, Suppression
from gateway.core.records import AuditEntry, AuditOf
from gateway.core.streams import Scope
from gateway.store import rows
from gateway.store.sql import Script, count, many, new_id
from gateway.store.sql import rows as fetch

EVENT_INSERT = rows.EVENT_INSERT + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

UPSERT_SUPPRESSION = (
    "INSERT INTO suppressions (tenant, address, reason, since, expires_at, event_id, note,"
    " scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, address, scope) DO UPDATE SET"
    " reason = excluded.reason, since = excluded.since, expires_at = excluded.expires_at,"
    " event_id = excluded.event_id, note = excluded.note"
)


def insert_event(event: Event) -> Script[int]:
    """Write one event row; its id."""
    event_id: int = yield new_id(EVENT_INSERT, *rows.event_values(event))
    return event_id


def upsert_suppression(suppression: Suppression) -> Script[None]:
    """Insert or replace the (tenant, address, scope) suppression."""
    yield count(UPSERT_SUPPRESSION, *suppression_values(suppression))


def suppression_values(suppression: Suppression) -> tuple[Any, ...]:
    """``UPSERT_SUPPRESSION``'s values.

    Raises:
        TypeError: the reason is not a ``SuppressionReason`` (``rows``).
    """
    return (
        suppression.tenant,
        suppression.address,
        rows.suppression_reason_value(suppression.reason),
        rows.ts(suppression.since),
        rows.ts(suppression.expires_at),
        suppression.event_id,
        suppression.note,
        Scope(suppression.scope).value,
    )


def insert_audit(entry: AuditEntry) -> Script[int]:
    """Write one ``admin_audit`` row; its id."""
    entry_id: int = yield new_id(
        "INSERT INTO admin_audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        entry.at.timestamp(),
        entry.actor,
        entry.action,
        entry.target,
        json.dumps(entry.detail),
    )
    return entry_id


def audited(audit: AuditOf | None, result: Any) -> Script[None]:
    """Write the audit entry ``audit`` builds from ``result``, in the same transaction."""
    entry = None if audit is None else audit(result)
    if entry is not None:
        yield from insert_audit(entry)


def upsert_credentials(tenant: str, username: str, secret_hash: str, now: datetime) -> Script[None]:
    yield count(
        "INSERT INTO credentials (username, tenant, secret_hash, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET"
        " secret_hash = excluded.secret_hash, tenant = excluded.tenant",
        username,
        tenant,
        secret_hash,
        now.timestamp(),
    )


def forget_holds(address: str) -> Script[int]:
    """Inside an erasure's transaction: give back and delete every quota hold of
    ``address`` (the table keeps it in clear). A transaction that queues it after all
    counts it again from then on; returns how many there were."""
    return (yield from take_back("address = ?", address))


def take_back(where: str, *args: Any) -> Script[int]:
    """Give back and delete the quota holds ``where`` selects; how many there were."""
    held = yield fetch(
        f"SELECT tenant, minute, count(*) FROM quota_holds WHERE {where} GROUP BY tenant, minute",
        *args,
    )
    if not held:
        return 0
    yield from give_back([(t, m, n) for t, m, n in held])
    gone: int = yield count(f"DELETE FROM quota_holds WHERE {where}", *args)
    return gone


def give_back(counts: list[tuple[str, int, int]]) -> Script[None]:
    """Subtract (tenant, minute, count) from the quota usage (a minute no longer kept:
    nothing)."""
    yield many(
        "UPDATE quota_usage SET used = @GREATEST(used - ?, 0) WHERE tenant = ? AND minute = ?",
        [(n, tenant, minute) for tenant, minute, n in counts],
    )
