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
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gateway.core.model import (
    Category,
    Delivery,
    Event,
    EventType,
    NewMessage,
    Reason,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.records import MessageRow, RecipientView, TenantSettings
from gateway.core.streams import Scope, Stream

#: A key of ``keep_clear_first``: a tuple whose second item is the address.
K = TypeVar("K", bound=tuple[Any, ...])

SUPPRESSION_COLUMNS = "tenant, address, reason, since, expires_at, event_id, note, scope"
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


def delivery_from(row: Sequence[Any]) -> Delivery:
    """A claimed recipient from a claim's row: id, queue id, tenant, sender, address,
    attempts, received at, first attempt at, stream, and last the address as given
    (``rcpt_to``); any columns a dialect's claim adds sit between the stream and that."""
    return Delivery(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        utc(row[6]),
        dt(row[7]),
        Stream(row[8]),
        rcpt_to=row[-1],
    )


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


def message_values(message: NewMessage) -> tuple[Any, ...]:
    """A message row's values: (queue id, tenant, mail from, Message-ID, subject, size,
    received at, client address, content), as both stores' enqueue insert them."""
    return (
        message.queue_id,
        message.tenant,
        message.mail_from,
        message.message_id,
        message.subject,
        len(message.content),
        message.received_at.timestamp(),
        message.client_address,
        message.content,
    )


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
        row[0],
        row[1],
        SuppressionReason(row[2]),
        utc(row[3]),
        dt(row[4]),
        row[5],
        row[6],
        Scope(row[7]),
    )


def keep_clear_first(found: dict[K, Suppression], key: K, suppression: Suppression) -> None:
    """Keep ``suppression`` for ``key`` (tenant, address, …) unless the address's entry in
    clear is there already: it wins over the hashed one an erasure left (as
    ``suppression_for``)."""
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


# --- the admin API's rows ------------------------------------------------------------------

#: Recipient statuses that still wait for an attempt (``due_at`` is set).
PENDING_STATUSES = ("queued", "deferred", "held")

#: Settings a PATCH may change -> column.
SETTINGS_COLUMNS = {
    "allowed_sender_domains": "allowed_sender_domains",
    "hourly_quota": "hourly_quota",
    "daily_quota": "daily_quota",
    "list_unsubscribe": "list_unsubscribe",
    "bounce_notice": "bounce_notice",
    "webhook_url": "webhook_url",
    "webhook_secret": "webhook_secret",
    "failure_threshold": "failure_threshold",
    "failure_window": "failure_window_seconds",
    # Streams and probation (migration 009).
    "probation": "probation_seconds",
    "default_stream": "default_stream",
    "complaint_scope": "complaint_scope",
}

TENANT_COLUMNS = (
    "name, allowed_sender_domains, hourly_quota, daily_quota, list_unsubscribe, bounce_notice,"
    " webhook_url, webhook_secret, failure_threshold, failure_window_seconds"
)
MESSAGE_COLUMNS = (
    "m.queue_id, m.tenant, m.mail_from, m.message_id, m.subject, m.size, m.received_at,"
    " m.client_address, m.held, m.content IS NOT NULL, m.stream"
)


def message_from(row: Sequence[Any]) -> MessageRow:
    return MessageRow(
        queue_id=row[0],
        tenant=row[1],
        mail_from=row[2],
        message_id=row[3],
        subject=row[4],
        size=row[5],
        received_at=utc(row[6]),
        client_address=row[7],
        held=bool(row[8]),
        has_content=bool(row[9]),
        stream=Stream(row[10]),
    )


def settings_from(row: Sequence[Any], usernames: tuple[str, ...]) -> TenantSettings:
    domains = tuple(d for d in row[1].split(",") if d)
    return TenantSettings(
        tenant=Tenant(row[0], domains, row[2], row[3]),
        list_unsubscribe=bool(row[4]),
        bounce_notice=bool(row[5]),
        webhook_url=row[6],
        webhook_secret=row[7],
        failure_threshold=row[8],
        failure_window=None if row[9] is None else timedelta(seconds=row[9]),
        usernames=usernames,
    )


def column_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (tuple, list)):
        return ",".join(value)
    return value


# --- the webhook outbox's rows ---------------------------------------------------------------

#: The events' columns qualified for a join with ``recipients`` (both have ``id``, ``tenant``...).
LOGGED_EVENT_COLUMNS = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))


def logged_event(row: Sequence[Any]) -> tuple[Event, Status | None]:
    """An event and its recipient's status from ``LOGGED_EVENT_COLUMNS, r.status``."""
    return event_from(row), Status(row[14]) if row[14] else None


def logged_events(
    rows: Sequence[Sequence[Any]], tenants: frozenset[str] | None
) -> list[tuple[Event, Status | None]]:
    """``logged_event`` of each row, or only of the rows of ``tenants`` when given (none
    for an empty set: the rows may then hold only the ids)."""
    if tenants is None:
        return [logged_event(r) for r in rows]
    if not tenants:
        return []
    return [logged_event(r) for r in rows if r[_TENANT] in tenants]


_TENANT = 3  # the tenant's position in ``EVENT_COLUMNS``


# --- quota usage -----------------------------------------------------------------------------

#: The longest window a quota counts (``daily_quota``): usage older than this is dropped.
KEEP = timedelta(days=1)


def minute_of(epoch: float) -> int:
    """The minute (``epoch // 60``) a time falls in: ``quota_usage.minute``."""
    return int(epoch // 60)
