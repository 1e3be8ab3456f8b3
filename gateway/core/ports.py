"""The ports adapters implement: ``Store``, ``Resolver``, ``Clock``, ``Tenants``.

Owns: the contracts between the pure core and the world. A fake implements a port for a
unit test; a contract suite runs every real adapter against the same expectations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gateway.core.model import (
    Category,
    Delivery,
    Event,
    NewMessage,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.replies import Reply


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MxHost:
    preference: int
    host: str


@dataclass(frozen=True, slots=True)
class MxAnswer:
    """The MX set of a domain. ``null`` is RFC 7505's "accepts no mail"; ``implicit`` means
    there was no MX and the domain's own A/AAAA stands in (RFC 5321 §5.1)."""

    hosts: tuple[MxHost, ...] = ()
    null: bool = False
    implicit: bool = False


class Resolver(Protocol):
    """DNS for intake checks and routing. Raises ``DnsTemporary`` or ``DnsPermanent``."""

    async def mx(self, domain: str) -> MxAnswer: ...

    async def addresses(self, host: str) -> tuple[str, ...]: ...


class Tenants(Protocol):
    """The tenant directory (``gateway.services.tenants``): each tenant as stored, with a
    change made on any node seen within about a second."""

    async def tenant(self, name: str) -> Tenant:
        """The tenant by name; one without settings when none is stored by that name."""
        ...


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """What ``Store.enqueue`` committed: recipients queued and those that were duplicates of
    the same Message-ID from the same tenant within the window (answered 250, not queued)."""

    queue_id: str
    queued: tuple[str, ...]
    duplicates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt for one recipient, ready to record.

    ``status`` is the new state; ``due_at`` the next attempt (deferred only). ``suppress``
    is the suppression the auto-block policy asks for after it, with its ``suppressed``
    event: written in the outcome's transaction when the outcome is (not when fenced off),
    so a crash cannot leave one without the other (issue 13). A suppression without an
    ``event_id`` is linked to the outcome's event. ``notice`` is the bounce notice to the
    sender this final failure causes, queued in the same transaction when the outcome is
    recorded; the same notice on several outcomes of one attempt is queued once (when any
    of them is recorded).
    """

    recipient_id: int
    status: Status
    event: Event
    due_at: datetime | None = None
    category: Category | None = None
    suppress: tuple[Suppression, Event] | None = None
    notice: NewMessage | None = None


def notices_of(outcomes: Sequence[Outcome], recorded: dict[int, int]) -> list[NewMessage]:
    """The bounce notices (``Outcome.notice``) of the outcomes ``recorded`` (recipient id ->
    event id), each once: what ``record_outcomes`` queues in the outcomes' transaction."""
    found: dict[str, NewMessage] = {}
    for outcome in outcomes:
        if outcome.notice is not None and outcome.recipient_id in recorded:
            found.setdefault(outcome.notice.queue_id, outcome.notice)
    return list(found.values())


@dataclass(frozen=True, slots=True)
class RecipientView:
    """One recipient row with its message's envelope, for support and the API."""

    recipient_id: int
    queue_id: str
    tenant: str
    address: str
    status: Status
    attempts: int
    due_at: datetime | None
    updated_at: datetime
    category: Category | None
    last_reply: str
    subject: str
    mail_from: str


@dataclass(frozen=True, slots=True)
class QueueSummary:
    counts: dict[str, int] = field(default_factory=dict)
    oldest_deferred: datetime | None = None


class Store(Protocol):
    """Durable state: messages, recipients, events, tenants, credentials, suppressions."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    # tenants and credentials
    async def ensure_tenant(self, tenant: Tenant) -> None: ...

    async def get_tenant(self, name: str) -> Tenant | None: ...

    async def set_credentials(self, tenant: str, username: str, secret_hash: str) -> None: ...

    async def get_credentials(self, username: str) -> tuple[str, str] | None: ...

    # intake
    async def enqueue(self, message: NewMessage, duplicate_window: timedelta) -> EnqueueResult: ...

    async def record_event(self, event: Event) -> int: ...

    async def count_accepted(self, tenant: str, since: datetime) -> int: ...

    async def reserve_quota(
        self,
        tenant: str,
        holder: str,
        address: str,
        limits: Sequence[tuple[int, timedelta]],
        now: datetime,
        expires_at: datetime,
    ) -> int | None:
        """Hold one recipient of an open transaction (``holder``) against the tenant's
        (most recipients, window) ``limits``, counting what every session and node holds or
        queued, atomically: ``None`` when held (or held already), else the index of the
        first limit it would exceed. ``NewMessage.hold`` settles the holds at enqueue;
        ``release_quota`` gives them back; unsettled, they lapse at ``expires_at``."""
        ...

    async def quota_exceeded(
        self, tenant: str, limits: Sequence[tuple[int, timedelta]], now: datetime
    ) -> int | None:
        """``reserve_quota``'s answer for one more recipient, counted the same way, without
        holding it (``gateway check``, the admin API's address check)."""
        ...

    async def release_quota(self, holder: str) -> int: ...

    # suppressions
    async def find_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None: ...

    async def find_hashed_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None: ...

    async def suppression_for(self, tenant: str, address: str, now: datetime) -> Suppression | None:
        """The active suppression of ``address`` in clear, else the hashed one an erasure
        left (``find_suppression`` then ``find_hashed_suppression``, in one round trip)."""
        ...

    async def add_suppression(self, suppression: Suppression) -> None: ...

    async def suppress_with_event(
        self, suppression: Suppression, event: Event, *, keep_permanent: bool = False
    ) -> tuple[Suppression, int] | None:
        """Write ``suppression`` and its ``suppressed`` ``event`` in one transaction: both or
        neither (issue 13). An ``event_id`` of ``None`` on the suppression becomes the new
        event's. ``keep_permanent``: an existing suppression without expiry is kept, and
        nothing is written (``None``). Returns the stored suppression and the event's id."""
        ...

    async def remove_suppression(self, tenant: str | None, address: str) -> int: ...

    async def list_suppressions(
        self, tenant: str | None, reason: SuppressionReason | None, limit: int, after: str
    ) -> list[Suppression]: ...

    # relay
    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Delivery]: ...

    async def claim_due_with_content(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> tuple[list[Delivery], dict[str, bytes | None]]:
        """``claim_due`` by whole messages (every due recipient of a claimed message, even
        past ``limit``), with queue id -> content (``None`` if gone) of each claimed message."""
        ...

    async def next_due(self) -> datetime | None: ...

    async def load_content(self, queue_id: str) -> bytes | None: ...

    async def record_outcomes(self, outcomes: Sequence[Outcome], owner: str) -> dict[int, int]:
        """Record attempt results (and their ``Outcome.suppress``) in one transaction; rows
        no longer leased to ``owner`` are fenced off. Returns recipient id -> event id of
        each outcome recorded."""
        ...

    async def release_claims(self, owner: str) -> int: ...

    async def suppressions_among(
        self, recipients: Sequence[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], Suppression]:
        """The active suppression of each ``(tenant, address)`` that has one, in clear or
        hashed (an erased address), the clear one first, as ``suppression_for`` finds it: for
        a whole claimed batch, in one query."""
        ...

    async def update_recipient(
        self, recipient_id: int, status: Status | None, event: Event
    ) -> int:
        """Set a recipient's status (``None`` keeps the row's own), category and reply from
        ``event``, outside an attempt, and record ``event``; returns the event's id."""
        ...

    # history
    async def events_for(self, address: str, tenant: str | None, limit: int) -> list[Event]: ...

    async def recipients_of(self, queue_id: str) -> list[RecipientView]: ...

    async def failure_streak(self, tenant: str, address: str, since: datetime) -> list[Event]: ...

    async def queue_summary(self) -> QueueSummary: ...


__all__ = [
    "Clock",
    "EnqueueResult",
    "MxAnswer",
    "MxHost",
    "Outcome",
    "QueueSummary",
    "RecipientView",
    "Reply",
    "Resolver",
    "Store",
    "SystemClock",
    "Tenants",
    "notices_of",
]
