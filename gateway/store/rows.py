"""Rows to model objects and back, shared by the SQLite and PostgreSQL stores.

Owns: the column lists both dialects select (the schema's tables and columns are the same
in both), the conversion of a fetched row into ``Event``, ``Tenant``, ``Suppression`` and
``RecipientView``, an ``Event``'s column values for an insert, and epoch-seconds time
conversion (both stores keep times as UNIX epoch seconds, UTC). Does not own: SQL
placeholders, connections or errors (``store.sqlite``, ``store.postgres``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.core.model import (
    Category,
    Event,
    EventType,
    Reason,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.ports import RecipientView

SUPPRESSION_COLUMNS = "tenant, address, reason, since, expires_at, event_id, note"
#: ``SUPPRESSION_COLUMNS`` of the table aliased ``s``.
SUPPRESSION_COLUMNS_OF_S = ", ".join(f"s.{c.strip()}" for c in SUPPRESSION_COLUMNS.split(","))
#: Events whose outcome counts as a delivery attempt (``attempts`` + 1).
ATTEMPT_EVENTS = frozenset({EventType.SENT, EventType.DEFERRED, EventType.BOUNCED})
EVENT_COLUMNS = (
    "id, recipient_id, queue_id, tenant, address, type, at, category, reply_code,"
    " enhanced, text, remote_host, reason, details"
)
#: ``INSERT INTO events (…)`` without its values; the columns follow ``event_values``.
EVENT_INSERT = (
    "INSERT INTO events (recipient_id, queue_id, tenant, address, type, at, category,"
    " reply_code, enhanced, text, remote_host, reason, details)"
)
RECIPIENT_VIEW = (
    "r.id, r.queue_id, r.tenant, r.address, r.status, r.attempts, r.due_at, r.updated_at,"
    " r.category, r.last_reply, m.subject, m.mail_from FROM recipients r JOIN messages m"
    " ON m.queue_id = r.queue_id"
)


def _first_in(status: str) -> str:
    return (
        "(SELECT m.received_at FROM recipients r JOIN messages m ON m.queue_id = r.queue_id"
        f" WHERE r.status = '{status}' ORDER BY r.id LIMIT 1)"
    )


# The age gauges read the message of the first recipient in a status: recipients are numbered
# as they are queued, so the lowest id is the longest waiting (to within the few milliseconds
# by which commits of concurrent sessions can overtake one another). An index probe, where
# min(received_at) over the status would join every row of it (1,000,000 deferred: seconds of
# CPU at each gauge refresh, bench/queue_size.py).
#: When the message of the longest-deferred recipient was accepted.
OLDEST_DEFERRED = f"SELECT {_first_in('deferred')}"
#: When the message of the longest-waiting (queued or deferred, not held) recipient was accepted.
OLDEST_WAITING = (
    f"SELECT min(t) FROM (SELECT {_first_in('queued')} AS t"
    f" UNION ALL SELECT {_first_in('deferred')} AS t) AS firsts"
)


def ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def utc(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def reply_text(event: Event) -> str:
    """The one-line reply a recipient row keeps as ``last_reply``."""
    if event.reply_code is None:
        return event.text
    parts = [str(event.reply_code), event.enhanced or "", event.text]
    return " ".join(p for p in parts if p)


def reason_value(reason: Reason) -> str:
    """The stored form of a reason: a ``Reason`` member's value.

    Raises:
        TypeError: ``reason`` is not a member (an untyped string that names none, say): a
            programming error, refused before anything is written.
    """
    try:
        return Reason(reason).value
    except ValueError:
        raise TypeError(f"not a core.model.Reason: {reason!r}") from None


def suppression_reason_value(reason: SuppressionReason) -> str:
    """The stored form of a suppression's reason: a ``SuppressionReason`` member's value
    (each is a ``Reason`` member too).

    Raises:
        TypeError: ``reason`` is not a suppression reason: a programming error, refused
            before anything is written.
    """
    try:
        return SuppressionReason(reason).value
    except ValueError:
        raise TypeError(f"not a core.model.SuppressionReason: {reason!r}") from None


def event_values(event: Event) -> tuple[Any, ...]:
    """The values for ``EVENT_INSERT``, in its column order (long texts cut to fit).

    Raises:
        TypeError: the event's reason is not a ``Reason`` member (``reason_value``).
    """
    return (
        event.recipient_id,
        event.queue_id,
        event.tenant,
        event.address,
        event.type.value,
        event.at.timestamp(),
        event.category.value if event.category else None,
        event.reply_code,
        event.enhanced,
        event.text[:2000],
        event.remote_host[:255],
        reason_value(event.reason),
        json.dumps(event.details),
    )


def event_from(row: Sequence[Any]) -> Event:
    """An ``Event`` from a row of ``EVENT_COLUMNS``."""
    return Event(
        recipient_id=row[1],
        queue_id=row[2],
        tenant=row[3],
        address=row[4],
        type=EventType(row[5]),
        at=utc(row[6]),
        category=Category(row[7]) if row[7] else None,
        reply_code=row[8],
        enhanced=row[9],
        text=row[10],
        remote_host=row[11],
        reason=_stored_reason(row[12]),
        details=json.loads(row[13]),
        event_id=row[0],
    )


def _stored_reason(value: str) -> Reason:
    """A stored reason; one no member names (written around the store, by hand) reads as
    ``legacy_unknown`` rather than failing the page that shows it."""
    try:
        return Reason(value)
    except ValueError:
        return Reason.LEGACY_UNKNOWN


def tenant_from(row: Sequence[Any]) -> Tenant:
    """A ``Tenant`` from (name, allowed_sender_domains, hourly_quota, daily_quota)."""
    domains = tuple(d for d in row[1].split(",") if d)
    return Tenant(row[0], domains, row[2], row[3])


def suppression_from(row: Sequence[Any]) -> Suppression:
    """A ``Suppression`` from a row of ``SUPPRESSION_COLUMNS``."""
    return Suppression(
        row[0], row[1], SuppressionReason(row[2]), utc(row[3]), dt(row[4]), row[5], row[6]
    )


def keep_clear_first(
    found: dict[tuple[str, str], Suppression], key: tuple[str, str], suppression: Suppression
) -> None:
    """Keep ``suppression`` for ``key`` (tenant, address) unless the address's entry in clear
    is there already: it wins over the hashed one an erasure left (as ``suppression_for``)."""
    kept = found.get(key)
    if kept is None or (kept.address != key[1] and suppression.address == key[1]):
        found[key] = suppression


def recipient_view_from(row: Sequence[Any]) -> RecipientView:
    """A ``RecipientView`` from a row of ``RECIPIENT_VIEW``."""
    return RecipientView(
        recipient_id=row[0],
        queue_id=row[1],
        tenant=row[2],
        address=row[3],
        status=Status(row[4]),
        attempts=row[5],
        due_at=dt(row[6]),
        updated_at=utc(row[7]),
        category=Category(row[8]) if row[8] else None,
        last_reply=row[9],
        subject=row[10],
        mail_from=row[11],
    )

