"""The PostgreSQL enqueue: a message, its recipients, their events and its quota settlement
in one statement (``ENQUEUE``), and the ``gateway_queue`` notification it sends.

Owns: that statement, its parameters and reading its result back, used by
``PostgresStore.enqueue`` and, for a bounce notice, by the relay's ``record_outcomes``
(``store.postgres_relay``). SQLite writes the same rows in its writer, statement by
statement (``store.sqlite_writes.enqueue_rows``). Does not own: the transaction or the
Message-ID lock (``store.postgres``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeAlias

import asyncpg

from gateway.core.model import NewMessage
from gateway.core.records import EnqueueResult
from gateway.store import rows
from gateway.store.rows import minute_of

Connection: TypeAlias = asyncpg.Connection

#: The channel ``enqueue`` notifies and ``listen`` waits on.
CHANNEL = "gateway_queue"

DUPLICATE_TEXT = "Same Message-ID retried within the window; not queued again (original "

# $1 queue_id, $2 tenant, $3 mail_from, $4 message_id, $5 subject, $6 size, $7 received_at,
# $8 client_address, $9 content, $10 recipients, $11 start of the duplicate window,
# $12 the duplicate event's text before the original's queue id, $13 the channel,
# $14 the transaction's quota hold ('' for none), $15 the minute of $7,
# $17 each recipient of $10 as given at RCPT ('' where it is the address).
#
# prev: recipients already queued under this Message-ID within the window (none without
# one); want: the others, in order. The message row is written only when some recipient is
# left; its RETURNING notifies the channel (delivered at commit). Recipient ids follow
# ``ORDER BY``; the events of the queued recipients come first, in recipient order, then
# the duplicates', as SQLite writes them. held/usage settle the quota holds as
# ``store.sqlite_quota.settle_holds`` does: for a counted tenant, each minute's usage moves
# by the queued recipients without a hold (+1, this minute) and the held ones not queued
# (-1, their minute), in one upsert (one statement may not change a row twice); a minute
# no longer kept is not written back with a negative count. Data-modifying CTEs always run
# to completion; the statement returns the duplicates (address, original queue id).
ENQUEUE = (
    "WITH prev AS (SELECT DISTINCT ON (r.address) r.address, m.queue_id FROM messages m"
    " JOIN recipients r ON r.queue_id = m.queue_id WHERE $4::text IS NOT NULL"
    " AND m.tenant = $2 AND m.message_id = $4 AND r.address = ANY($10::text[])"
    " AND m.received_at >= $11),"
    " want AS (SELECT u.address, u.rcpt_to, u.n FROM unnest($10::text[], $17::text[])"
    " WITH ORDINALITY AS u(address, rcpt_to, n)"
    " WHERE NOT EXISTS (SELECT 1 FROM prev p WHERE p.address = u.address)),"
    " msg AS (INSERT INTO messages (queue_id, tenant, mail_from, message_id, subject, size,"
    " received_at, client_address, content, stream)"
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $16"
    " WHERE EXISTS (SELECT 1 FROM want) RETURNING queue_id, pg_notify($13, '') AS woken),"
    " rcpt AS (INSERT INTO recipients (queue_id, tenant, address, status, due_at, updated_at,"
    " rcpt_to) SELECT msg.queue_id, $2, w.address, 'queued', $7, $7, w.rcpt_to"
    " FROM msg, want w ORDER BY w.n"
    " RETURNING id, address),"
    f" ev AS ({rows.EVENT_INSERT} SELECT e.rid, e.qid, $2, e.address, e.type, $7, NULL,"
    " NULL, NULL, e.text, '', e.reason, '{}' FROM ("
    " SELECT 0 AS k, r.id AS n, r.id AS rid, $1::text AS qid, r.address, 'queued' AS type,"
    " '' AS text, 'queued' AS reason FROM rcpt r"
    " UNION ALL SELECT 1, u.n, NULL, p.queue_id, u.address, 'duplicate',"
    " $12::text || p.queue_id || ')', 'duplicate_message_id'"
    " FROM unnest($10::text[]) WITH ORDINALITY AS u(address, n)"
    " JOIN prev p ON p.address = u.address) e ORDER BY e.k, e.n),"
    " held AS (DELETE FROM quota_holds WHERE $14::text <> '' AND holder = $14"
    " RETURNING address, minute),"
    " delta AS (SELECT $15::bigint AS minute, 1 AS n FROM rcpt r"
    " WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.address = r.address)"
    " UNION ALL SELECT h.minute, -1 FROM held h"
    " WHERE NOT EXISTS (SELECT 1 FROM rcpt r WHERE r.address = h.address)),"
    " usage AS (INSERT INTO quota_usage (tenant, minute, used)"
    " SELECT $2, d.minute, sum(d.n) FROM delta d"
    " WHERE EXISTS (SELECT 1 FROM quota_tracking WHERE tenant = $2) GROUP BY d.minute"
    " HAVING sum(d.n) > 0 OR (sum(d.n) < 0 AND EXISTS (SELECT 1 FROM quota_usage q"
    " WHERE q.tenant = $2 AND q.minute = d.minute))"
    " ON CONFLICT (tenant, minute) DO UPDATE SET used = greatest(quota_usage.used"
    " + excluded.used, 0))"
    " SELECT p.address, p.queue_id FROM prev p"
)


def enqueue_args(message: NewMessage, duplicate_window: timedelta) -> tuple[Any, ...]:
    """``ENQUEUE``'s parameters for ``message``."""
    now = message.received_at.timestamp()
    return (
        *rows.message_values(message),
        list(message.recipients),
        now - duplicate_window.total_seconds(),
        DUPLICATE_TEXT,
        CHANNEL,
        message.hold,
        minute_of(now),
        message.stream.value,
        message.rcpt_to_list(),
    )


def enqueued(message: NewMessage, previous_rows: Sequence[Any]) -> EnqueueResult:
    """The ``EnqueueResult`` from ``ENQUEUE``'s rows (the duplicates and their originals)."""
    previous = {row[0]: row[1] for row in previous_rows}
    queued = tuple(a for a in message.recipients if a not in previous)
    duplicates = tuple(a for a in message.recipients if a in previous)
    original = previous[duplicates[0]] if duplicates else None
    queue_id = message.queue_id if queued else (original or message.queue_id)
    return EnqueueResult(queue_id, queued, duplicates)


async def enqueue_in(
    c: Connection, message: NewMessage, duplicate_window: timedelta
) -> EnqueueResult:
    """``enqueue``'s statement inside the caller's transaction (no Message-ID lock: a bounce
    notice has no Message-ID of its own, an admin's test message takes the lock first)."""
    return enqueued(message, await c.fetch(ENQUEUE, *enqueue_args(message, duplicate_window)))


def lock_key(text: str) -> int:
    """A signed 64-bit advisory lock key for ``text`` (the same on every node)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)
