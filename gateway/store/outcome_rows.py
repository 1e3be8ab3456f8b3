"""Recording the relay's attempt outcomes, written once for both stores.

Owns: the script that updates the rows still leased to the recording node (the lease
fence), logs an event per row updated, and writes the policy's suppressions with their
events (``Outcome.suppress``, issue 13). Each store runs it in its own transaction and then
queues the bounce notices the recorded outcomes cause (``Outcome.notice``) with its own
enqueue (``store.sqlite_relay``, ``store.postgres_relay``). Does not own: the claims
(dialect code: ``FOR UPDATE SKIP LOCKED`` or SQLite's writer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gateway.core.records import Outcome
from gateway.store.rows import ATTEMPT_EVENTS, reply_text, ts
from gateway.store.sql import Dialect, Script
from gateway.store.sql import rows as fetch
from gateway.store.writes import insert_event, upsert_suppression

_UPDATE = (
    "UPDATE recipients SET status = ?, due_at = ?, lease_owner = NULL,"
    " attempts = attempts + ?, first_attempt_at = coalesce(first_attempt_at, ?),"
    " updated_at = ?, category = coalesce(?, category), last_reply = ?"
    " WHERE lease_owner = ? AND "
)


def record_outcomes(d: Dialect, outcomes: Sequence[Outcome], owner: str) -> Script[dict[int, int]]:
    """Update the rows still leased to ``owner``, log an event for each row updated, then
    write the policy's suppressions of the outcomes recorded, with their events.

    Outcomes with the same values (a message's recipients answered alike in one
    transaction) update their rows in one statement; the lease fence stays per row. When
    one row comes twice, the outcomes go one at a time, in order: the first one wins.

    Returns:
        recipient id -> event id for each outcome recorded. An outcome whose row was taken
        over by another owner (its lease ran out) is left out and not written.
    """
    ids = [o.recipient_id for o in outcomes]
    batches: list[tuple[tuple[Any, ...], Sequence[int]]]
    if len(set(ids)) == len(ids):
        grouped: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for outcome in outcomes:
            grouped[_values(outcome)].append(outcome.recipient_id)
        batches = [(values, chunk) for values, rids in grouped.items() for chunk in d.chunks(rids)]
    else:
        batches = [(_values(o), [o.recipient_id]) for o in outcomes]
    updated: set[int] = set()
    for values, chunk in batches:
        among, args = d.among("id", chunk, "bigint")
        found = yield fetch(_UPDATE + among + " RETURNING id", *values, owner, *args)
        updated.update(r[0] for r in found)
    recorded: dict[int, int] = {}
    for outcome in outcomes:
        if outcome.recipient_id in updated and outcome.recipient_id not in recorded:
            recorded[outcome.recipient_id] = yield from insert_event(outcome.event)
    for outcome in outcomes:  # the policy's, in the outcomes' transaction (issue 13)
        event_id = recorded.get(outcome.recipient_id)
        if outcome.suppress is None or event_id is None:
            continue
        suppression, event = outcome.suppress
        yield from insert_event(event)
        if suppression.event_id is None:
            suppression = replace(suppression, event_id=event_id)
        yield from upsert_suppression(suppression)
    return recorded


def _values(outcome: Outcome) -> tuple[Any, ...]:
    """The values ``record_outcomes`` sets on the row (the ``SET`` clause's, in order)."""
    ev = outcome.event
    at = ts(ev.at)
    return (
        outcome.status.value,
        ts(outcome.due_at),
        1 if ev.type in ATTEMPT_EVENTS else 0,
        at,
        at,
        outcome.category.value if outcome.category else None,
        reply_text(ev),
    )
