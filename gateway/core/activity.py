"""A tenant's sending activity and the overview's counts, as the store answers them.

Owns: the records of ``Store.tenant_activity`` and ``Store.overview`` (issue 16 items 1 and
4) and the day boundaries they are counted in (UTC days, today first). Does not own: the
queries (``store.support_queries``) or how a page draws them (``admin.overview``).

A day is a UTC calendar day. ``day_starts(now, 7)`` is today's midnight and the six before
it, newest first; a count for day ``i`` covers ``[starts[i], starts[i] + 1 day)`` (today's
up to now).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DAYS = 7


def day_starts(now: datetime, days: int = DAYS) -> list[datetime]:
    """The UTC midnights of today and the ``days - 1`` days before, newest first.

    Args:
        now: the current time (any time zone; counted in UTC).
        days: how many days, today included (at least 1).
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today - timedelta(days=i) for i in range(max(days, 1))]


@dataclass(frozen=True, slots=True)
class DayCount:
    """One UTC day of a tenant's sending.

    Args:
        day: the day's midnight (UTC).
        accepted: messages the gateway accepted from the application that day.
        refused: recipients refused at ``RCPT`` that day (``rejected`` events).
    """

    day: datetime
    accepted: int
    refused: int


@dataclass(frozen=True, slots=True)
class TenantActivity:
    """What an application handed to the gateway lately (one tenant, or every one).

    Args:
        last_accepted_at: when the newest message was accepted, or ``None`` (none kept).
        days: one entry per day of ``day_starts``, newest first.
    """

    last_accepted_at: datetime | None
    days: list[DayCount]

    @property
    def today(self) -> int:
        return self.days[0].accepted if self.days else 0


@dataclass(frozen=True, slots=True)
class OverviewCounts:
    """The overview's numbers over ``day_starts`` (one tenant, or every one).

    Args:
        events: ``(tenant, day index, event type, count)``; day index 0 is today.
        failures: ``(tenant, day index, event type, category, count)`` of the failures
            (bounced, deferred, expired, rejected) that have a category.
        failing_domains: ``(destination domain, failures)``, most first (bounced, deferred
            and expired events of the period).
        failing_hosts: ``(MX host that answered, failures)``, most first (the caller folds
            hosts into providers).
        waiting: ``(tenant, status, count, oldest update)`` of recipients queued, deferred or
            held now.
    """

    events: list[tuple[str, int, str, int]] = field(default_factory=list)
    failures: list[tuple[str, int, str, str, int]] = field(default_factory=list)
    failing_domains: list[tuple[str, int]] = field(default_factory=list)
    failing_hosts: list[tuple[str, int]] = field(default_factory=list)
    waiting: list[tuple[str, str, int, datetime]] = field(default_factory=list)
