"""The PostgreSQL store's relay queries: claims with leases, outcomes fenced by the lease owner.

Owns: claiming due recipients with ``FOR UPDATE SKIP LOCKED`` (several nodes claim at once,
none waits), recording attempt outcomes (with the policy's suppressions and the bounce
notices, in one transaction), the suppressions of a claimed batch, and releasing a node's
leases (notifying ``gateway_queue``). The SQLite side is ``store.sqlite_relay``. Does not
own: the pool, the schema or the translation of errors (``store.postgres``).

A lease is the row's ``due_at`` pushed forward with ``lease_owner`` set: a node that dies
leaves rows that fall due again when their lease runs out, and ``record_outcomes`` writes
only rows still leased to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeAlias

import asyncpg

from gateway.core.model import Delivery, Event, Suppression
from gateway.core.records import Outcome, hashed_address, notices_of
from gateway.core.streams import Stream
from gateway.store import writes
from gateway.store.mixins import PostgresQueries
from gateway.store.outcome_rows import record_outcomes
from gateway.store.policy_queries import DELIVERING
from gateway.store.postgres_enqueue import enqueue_in
from gateway.store.rows import (
    SUPPRESSION_COLUMNS_OF_S,
    delivery_from,
    keep_clear_first,
    suppression_from,
)
from gateway.store.sql import POSTGRES, run_postgres

Connection: TypeAlias = asyncpg.Connection


class PostgresRelayQueries(PostgresQueries):
    """The relay's queries; relies on ``PostgresStore._run``."""

    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Delivery]:
        """Lease up to ``limit`` due recipients to ``owner`` until ``now + lease``.

        The lease is the row's ``due_at`` pushed forward: if the owner dies, the row simply
        becomes due again when the lease runs out. ``SKIP LOCKED`` lets several nodes claim
        at once: each takes rows no other claim holds, none waits.
        """
        rows = await self._run(
            lambda c: c.fetch(
                "WITH due AS (SELECT r.id, r.due_at FROM recipients r JOIN messages m"
                " ON m.queue_id = r.queue_id WHERE r.due_at <= $1 AND m.held = 0"
                f" AND {DELIVERING}"
                " ORDER BY r.due_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED)"
                " UPDATE recipients r SET due_at = $3, lease_owner = $4 FROM due, messages m"
                " WHERE r.id = due.id AND m.queue_id = r.queue_id"
                " RETURNING r.id, r.queue_id, r.tenant, m.mail_from, r.address, r.attempts,"
                " m.received_at, r.first_attempt_at, m.stream, due.due_at AS was_due, r.rcpt_to",
                now.timestamp(),
                limit,
                (now + lease).timestamp(),
                owner,
            ),
            transaction=False,  # one statement: its own transaction
        )
        rows = sorted(rows, key=lambda row: (row["was_due"], row["id"]))
        return [delivery_from(row) for row in rows]

    async def claim_due_with_content(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> tuple[list[Delivery], dict[str, bytes | None]]:
        """``claim_due`` by whole messages, with their content, in one transaction.

        Every due recipient of a claimed message that no other claim holds is claimed with
        it (the limit is then exceeded by the rest of those messages). Returns the
        deliveries and queue id -> content (``None`` when it is gone) for every claimed
        message.
        """

        async def work(c: Connection) -> tuple[list[Delivery], dict[str, bytes | None]]:
            rows = await c.fetch(
                "WITH due AS (SELECT r.id, r.due_at, r.queue_id FROM recipients r"
                " JOIN messages m ON m.queue_id = r.queue_id WHERE r.due_at <= $1 AND m.held = 0"
                f" AND {DELIVERING}"
                " ORDER BY r.due_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED),"
                " rest AS (SELECT r.id, r.due_at FROM recipients r"
                " WHERE r.queue_id IN (SELECT queue_id FROM due) AND r.due_at <= $1"
                " AND r.id NOT IN (SELECT id FROM due) FOR UPDATE SKIP LOCKED),"
                " picked AS (SELECT id, due_at FROM due UNION ALL SELECT id, due_at FROM rest)"
                " UPDATE recipients r SET due_at = $3, lease_owner = $4 FROM picked, messages m"
                " WHERE r.id = picked.id AND m.queue_id = r.queue_id"
                " RETURNING r.id, r.queue_id, r.tenant, m.mail_from, r.address, r.attempts,"
                " m.received_at, r.first_attempt_at, m.stream, picked.due_at AS was_due, r.rcpt_to",
                now.timestamp(),
                limit,
                (now + lease).timestamp(),
                owner,
            )
            rows = sorted(rows, key=lambda row: (row["was_due"], row["id"]))
            queue_ids = list(dict.fromkeys(row[1] for row in rows))
            contents: dict[str, bytes | None] = dict.fromkeys(queue_ids)
            if queue_ids:
                for found in await c.fetch(
                    "SELECT queue_id, content FROM messages WHERE queue_id = ANY($1::text[])",
                    queue_ids,
                ):
                    contents[found[0]] = None if found[1] is None else bytes(found[1])
            deliveries = [delivery_from(row) for row in rows]
            return deliveries, contents

        return await self._run(work)

    async def record_outcomes(self, outcomes: Sequence[Outcome], owner: str) -> dict[int, int]:
        """Record attempt results; rows no longer leased to ``owner`` are fenced off.

        Returns:
            recipient id -> event id for each outcome recorded. An outcome whose row was
            taken over by another owner (its lease ran out) is left out and not written.
        """

        async def work(c: Connection) -> dict[int, int]:
            recorded = await run_postgres(c, record_outcomes(POSTGRES, outcomes, owner))
            # The bounce notices the recorded outcomes cause, in their transaction.
            for notice in notices_of(outcomes, recorded):
                await enqueue_in(c, notice, timedelta(0))
            return recorded

        return await self._run(work)

    async def suppressions_among(
        self, recipients: Sequence[tuple[str, str, Stream]], now: datetime
    ) -> dict[tuple[str, str, Stream], Suppression]:
        """The active suppression of each ``(tenant, address, stream)`` that has one (scope
        ``all`` or the stream's), in clear or hashed (an erased address; the clear one
        first): a claimed batch in one statement."""
        wanted = list(dict.fromkeys(recipients))
        if not wanted:
            return {}
        found_rows = await self._run(
            lambda c: c.fetch(
                f"SELECT w.address, w.stream, {SUPPRESSION_COLUMNS_OF_S}"
                " FROM unnest($1::text[], $2::text[], $3::text[], $5::text[])"
                " AS w (tenant, address, hashed, stream)"
                " JOIN suppressions s ON s.tenant = w.tenant"
                " AND s.address IN (w.address, w.hashed) AND s.scope IN ('all', w.stream)"
                " WHERE s.expires_at IS NULL OR s.expires_at > $4",
                [tenant for tenant, _, _ in wanted],
                [address for _, address, _ in wanted],
                [hashed_address(address) for _, address, _ in wanted],
                now.timestamp(),
                [stream.value for _, _, stream in wanted],
            ),
            transaction=False,
        )
        found: dict[tuple[str, str, Stream], Suppression] = {}
        for row in found_rows:
            values = tuple(row)
            key = (values[2], values[0], Stream(values[1]))
            keep_clear_first(found, key, suppression_from(values[2:]))
        return found


def _rowcount(status: str) -> int:
    """The row count from a command tag (``UPDATE 3``, ``DELETE 0``, ``INSERT 0 1``)."""
    return int(status.rsplit(" ", 1)[-1])


async def _insert_event(c: Connection, event: Event) -> int:
    return await run_postgres(c, writes.insert_event(event))
