"""The SQLite store's relay queries: claims with leases, outcomes fenced by the lease owner.

Owns: claiming due recipients (by whole messages, with their content), recording attempt
outcomes in batches, releasing a node's leases, the suppressions of a claimed batch, status
changes outside an attempt, and inserting an event row (shared by the other queries). Does
not own: the connection, the writer or errors (``store.sqlite``, whose ``SqliteStore`` mixes
this in).

A lease is the row's ``due_at`` pushed forward with ``lease_owner`` set: if the owner dies
the row becomes due again when the lease runs out, and an owner whose lease was taken over
can no longer record (every update checks ``lease_owner``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from gateway.core.model import Delivery, Suppression
from gateway.core.records import Outcome, hashed_address, notices_of
from gateway.core.streams import Stream
from gateway.store import rows
from gateway.store.mixins import SqliteQueries
from gateway.store.outcome_rows import record_outcomes
from gateway.store.policy_queries import DELIVERING
from gateway.store.rows import delivery_from
from gateway.store.sql import SQLITE, run_sqlite
from gateway.store.sqlite_writes import enqueue_rows

T = TypeVar("T")

_dt = rows.utc
_reply_text = rows.reply_text
_ATTEMPT_EVENTS = rows.ATTEMPT_EVENTS


class RelayQueries(SqliteQueries):
    """The relay's queries; relies on ``SqliteStore._read`` and ``._write``."""

    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Delivery]:
        """Lease up to ``limit`` due recipients to ``owner`` until ``now + lease``.

        The lease is the row's ``due_at`` pushed forward: if the owner dies, the row simply
        becomes due again when the lease runs out.
        """

        def work(c: sqlite3.Connection) -> list[Delivery]:
            rows = c.execute(
                "SELECT r.id, r.queue_id, r.tenant, m.mail_from, r.address, r.attempts,"
                " m.received_at, r.first_attempt_at, m.stream, r.rcpt_to FROM recipients r"
                " JOIN messages m"
                " ON m.queue_id = r.queue_id WHERE r.due_at <= ? AND m.held = 0"
                f" AND {DELIVERING}"
                " ORDER BY r.due_at LIMIT ?",
                (now.timestamp(), limit),
            ).fetchall()
            until = (now + lease).timestamp()
            c.executemany(
                "UPDATE recipients SET due_at = ?, lease_owner = ? WHERE id = ?",
                [(until, owner, row[0]) for row in rows],
            )
            return [delivery_from(row) for row in rows]

        result: list[Delivery] = await self._write(work)
        return result

    async def claim_due_with_content(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> tuple[list[Delivery], dict[str, bytes | None]]:
        """``claim_due`` by whole messages, with their content, in one transaction.

        Every due recipient of a claimed message is claimed with it, so one message goes out
        in one transaction even when ``limit`` falls inside it (the limit is then exceeded
        by the rest of those messages). Returns the deliveries (oldest due first, the rest of
        a message after them) and queue id -> content (``None`` when it is gone) for every
        claimed message.
        """

        def work(c: sqlite3.Connection) -> tuple[list[Delivery], dict[str, bytes | None]]:
            at = now.timestamp()
            rows = c.execute(_CLAIM_SQL + " ORDER BY r.due_at LIMIT ?", (at, limit)).fetchall()
            queue_ids = list(dict.fromkeys(row[1] for row in rows))
            if len(rows) >= limit:
                taken = {row[0] for row in rows}
                for chunk in _chunks(queue_ids):
                    marks = ", ".join("?" * len(chunk))
                    rows.extend(
                        row
                        for row in c.execute(
                            _CLAIM_SQL + f" AND r.queue_id IN ({marks}) ORDER BY r.id",
                            (at, *chunk),
                        ).fetchall()
                        if row[0] not in taken
                    )
            until = (now + lease).timestamp()
            c.executemany(
                "UPDATE recipients SET due_at = ?, lease_owner = ? WHERE id = ?",
                [(until, owner, row[0]) for row in rows],
            )
            contents: dict[str, bytes | None] = dict.fromkeys(queue_ids)
            for chunk in _chunks(queue_ids):
                marks = ", ".join("?" * len(chunk))
                contents.update(
                    c.execute(
                        f"SELECT queue_id, content FROM messages WHERE queue_id IN ({marks})",
                        chunk,
                    ).fetchall()
                )
            deliveries = [delivery_from(row) for row in rows]
            return deliveries, contents

        result: tuple[list[Delivery], dict[str, bytes | None]] = await self._write(work)
        return result

    async def record_outcomes(self, outcomes: Sequence[Outcome], owner: str) -> dict[int, int]:
        """Record attempt results (with their suppressions and bounce notices); rows no
        longer leased to ``owner`` are fenced off.

        Returns:
            recipient id -> event id for each outcome recorded. An outcome whose row was
            taken over by another owner (its lease ran out) is left out and not written.
        """

        def work(c: sqlite3.Connection) -> dict[int, int]:
            recorded = run_sqlite(c, record_outcomes(SQLITE, outcomes, owner))
            # The bounce notices the recorded outcomes cause, in their transaction.
            for notice in notices_of(outcomes, recorded):
                enqueue_rows(c, notice, timedelta(0))
            return recorded

        result: dict[int, int] = await self._write(work)
        return result

    async def suppressions_among(
        self, recipients: Sequence[tuple[str, str, Stream]], now: datetime
    ) -> dict[tuple[str, str, Stream], Suppression]:
        """The active suppression of each ``(tenant, address, stream)`` that has one (scope
        ``all`` or the stream's), in clear or hashed (an erased address; the clear one
        first): a claimed batch in one read (one statement per ``_PAIRS_CHUNK`` triples)."""
        wanted = list(dict.fromkeys(recipients))
        if not wanted:
            return {}
        at = now.timestamp()

        def work(c: sqlite3.Connection) -> dict[tuple[str, str, Stream], Suppression]:
            found: dict[tuple[str, str, Stream], Suppression] = {}
            for chunk in _chunks(wanted, _PAIRS_CHUNK):
                marks = ", ".join(["(?, ?, ?, ?)"] * (2 * len(chunk)))
                args: list[Any] = []
                for tenant, address, stream in chunk:
                    args += (tenant, address, address, stream.value)
                    args += (tenant, hashed_address(address), address, stream.value)
                for row in c.execute(
                    f"WITH wanted (tenant, key, address, stream) AS (VALUES {marks})"
                    f" SELECT w.address, w.stream, {rows.SUPPRESSION_COLUMNS_OF_S} FROM wanted w"
                    " JOIN suppressions s ON s.tenant = w.tenant AND s.address = w.key"
                    " AND s.scope IN ('all', w.stream)"
                    " WHERE s.expires_at IS NULL OR s.expires_at > ?",
                    (*args, at),
                ).fetchall():
                    key = (row[2], row[0], Stream(row[1]))
                    rows.keep_clear_first(found, key, rows.suppression_from(row[2:]))
            return found

        result: dict[tuple[str, str, Stream], Suppression] = await self._read(work)
        return result


_CLAIM_SQL = (
    "SELECT r.id, r.queue_id, r.tenant, m.mail_from, r.address, r.attempts, m.received_at,"
    " r.first_attempt_at, m.stream, r.rcpt_to FROM recipients r JOIN messages m"
    " ON m.queue_id = r.queue_id WHERE r.due_at <= ? AND m.held = 0"
    f" AND {DELIVERING}"
)
_IN_CHUNK = 500  # bound on ``?`` placeholders per statement (SQLite's limit may be 999)
_PAIRS_CHUNK = 120  # ``suppressions_among``: eight placeholders a triple, under the same bound


def _chunks(items: list[T], size: int = _IN_CHUNK) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
