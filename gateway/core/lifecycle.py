"""What one delivery attempt does to a recipient: ``transition`` is pure.

Owns: the mapping from an attempt's partition (accepted, deferred, bounced) to the new
status, the next due time, and the event type and reason. Does not own: retry intervals
(``core.schedule``) or whether the address gets suppressed (``core.policy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from gateway.core.model import Category, EventType, Status
from gateway.core.schedule import next_attempt, retry_hint

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.core.model import Delivery
    from gateway.core.replies import Reply


class Result(StrEnum):
    """The partition an attempt put a recipient in (docs/style.md §6)."""

    ACCEPTED = "accepted"
    DEFERRED = "deferred"
    BOUNCED = "bounced"


@dataclass(frozen=True, slots=True)
class Transition:
    status: Status
    event: EventType
    due_at: datetime | None
    category: Category | None
    reason: str


def transition(
    delivery: Delivery,
    result: Result,
    reply: Reply,
    category: Category | None,
    now: datetime,
    intervals: Sequence[timedelta],
    lifetime: timedelta,
) -> Transition:
    """The recipient's new state after an attempt.

    Args:
        delivery: the claimed recipient (``attempts`` excludes this attempt).
        result: which partition the attempt put it in.
        reply: the reply that decided it (real or synthesised for network errors).
        category: the classifier's category for a failure reply.
        now: the attempt's time.
        intervals: ``relay.retry_intervals``.
        lifetime: ``relay.max_queue_lifetime``.
    """
    if result is Result.ACCEPTED:
        return Transition(Status.SENT, EventType.SENT, None, Category.DELIVERED, "accepted")
    if result is Result.BOUNCED:
        return Transition(Status.BOUNCED, EventType.BOUNCED, None, category, "permanent_failure")
    # The lifetime counts from acceptance; but a recipient first tried only after that
    # deadline (a forward clock jump, or a gateway down that long) has had no chance yet:
    # its lifetime counts from its first attempt, so the queue does not expire en masse.
    start = delivery.received_at
    first = delivery.first_attempt_at or now
    if first >= start + lifetime:
        start = first
    due = next_attempt(
        delivery.attempts + 1,
        now,
        start,
        intervals,
        lifetime,
        retry_hint(reply.text),
    )
    if due is None:
        # RFC 5321 §4.5.4.1: give up after the maximum queue lifetime.
        return Transition(
            Status.EXPIRED,
            EventType.EXPIRED,
            None,
            category or Category.RECEIVING_PROBLEM,
            "queue_lifetime_exceeded",
        )
    return Transition(Status.DEFERRED, EventType.DEFERRED, due, category, "transient_failure")
