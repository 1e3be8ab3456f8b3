"""The SQLite store's row writes that several of its query modules share.

Owns: writing a message with its recipients, their ``queued`` events and its quota
settlement (``enqueue_rows``, run by ``SqliteStore.enqueue`` and by the relay's
``record_outcomes`` for a bounce notice: PostgreSQL does it in one statement of its own), and
the shared row writes of ``store.writes`` called synchronously on the writer's connection.
Each runs inside the caller's transaction. Does not own: the
connection, the writer or errors (``store.sqlite``).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from gateway.core.model import Event, EventType, NewMessage, Reason, Suppression
from gateway.core.records import AuditOf, EnqueueResult
from gateway.store import rows, writes
from gateway.store.sql import run_sqlite
from gateway.store.sqlite_quota import settle_holds

#: The ``queued`` event of each of a message's recipients: the values an ``Event`` of type
#: QUEUED with only the required fields gives through ``rows.event_values``.
_QUEUED_EVENTS_SQL = (
    rows.EVENT_INSERT
    + " SELECT id, queue_id, tenant, address, 'queued', ?, NULL, NULL, NULL, '', '', 'queued',"
    " '{}'"
    " FROM recipients WHERE queue_id = ? ORDER BY id"
)


def insert_event(c: sqlite3.Connection, event: Event) -> int:
    """Write one event row (``store.writes.insert_event``'s statement, in one call); its id."""
    return int(c.execute(writes.EVENT_INSERT, rows.event_values(event)).lastrowid or 0)


def upsert_suppression(c: sqlite3.Connection, suppression: Suppression) -> None:
    """Insert or replace the (tenant, address) suppression (``store.writes``' statement)."""
    c.execute(writes.UPSERT_SUPPRESSION, writes.suppression_values(suppression))


def audited(c: sqlite3.Connection, audit: AuditOf | None, result: Any) -> None:
    """``store.writes.audited`` on the writer's connection."""
    run_sqlite(c, writes.audited(audit, result))


def upsert_credentials(
    c: sqlite3.Connection, tenant: str, username: str, secret_hash: str, now: datetime
) -> None:
    """``store.writes.upsert_credentials`` on the writer's connection."""
    run_sqlite(c, writes.upsert_credentials(tenant, username, secret_hash, now))


def enqueue_rows(
    c: sqlite3.Connection, message: NewMessage, duplicate_window: timedelta
) -> EnqueueResult:
    """``Store.enqueue`` inside the caller's transaction: the message, its recipients and
    their ``queued`` events, the ``duplicate`` events of recipients sent the same Message-ID
    within ``duplicate_window``, and the settlement of the transaction's quota holds."""
    now = message.received_at.timestamp()
    queued, duplicates, original = [], [], None
    # The few earlier messages with this Message-ID (usually none: then no recipient
    # needs a look-up).
    earlier = (
        c.execute(
            # ``+received_at``: not an index term, so SQLite (no statistics) finds the rows by
            # (tenant, message_id), never by a range of messages_tenant_received: that is
            # every message of the tenant within the window, for each message enqueued.
            "SELECT 1 FROM messages WHERE tenant = ? AND message_id = ?"
            " AND +received_at >= ? LIMIT 1",
            (message.tenant, message.message_id, now - duplicate_window.total_seconds()),
        ).fetchone()
        if message.message_id
        else None
    )
    for address in message.recipients:
        previous = None
        if earlier is not None:
            previous = c.execute(
                # CROSS JOIN fixes the loop order: find the few messages with this
                # Message-ID first, then their recipients. Left to itself, SQLite
                # starts from the address and scans every earlier message to it.
                "SELECT m.queue_id FROM messages m CROSS JOIN recipients r"
                " ON r.queue_id = m.queue_id WHERE m.tenant = ? AND m.message_id = ?"
                " AND r.address = ? AND +m.received_at >= ? LIMIT 1",
                (
                    message.tenant,
                    message.message_id,
                    address,
                    now - duplicate_window.total_seconds(),
                ),
            ).fetchone()
        if previous is None:
            queued.append(address)
        else:
            duplicates.append((address, previous[0]))
            original = original or previous[0]
    if queued:
        c.execute(
            "INSERT INTO messages (queue_id, tenant, mail_from, message_id, subject, size,"
            " received_at, client_address, content, stream)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*rows.message_values(message), message.stream.value),
        )
        given = dict(zip(message.recipients, message.rcpt_to_list(), strict=True))
        c.executemany(
            "INSERT INTO recipients (queue_id, tenant, address, status, due_at,"
            " updated_at, rcpt_to) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
            [(message.queue_id, message.tenant, a, now, now, given[a]) for a in queued],
        )
        # Every recipient's ``queued`` event in one statement, from the rows just
        # written (a new queue id: they are the message's only recipients).
        c.execute(_QUEUED_EVENTS_SQL, (now, message.queue_id))
    settle_holds(c, message.tenant, message.hold, queued, now)
    for address, previous_id in duplicates:
        insert_event(
            c,
            Event(
                None,
                message.tenant,
                address,
                EventType.DUPLICATE,
                message.received_at,
                queue_id=previous_id,
                reason=Reason.DUPLICATE_MESSAGE_ID,
                text=f"Same Message-ID retried within the window; not queued again "
                f"(original {previous_id})",
            ),
        )
    queue_id = message.queue_id if queued else (original or message.queue_id)
    return EnqueueResult(queue_id, tuple(queued), tuple(a for a, _ in duplicates))

