"""The records the store ports take and return: one module, imported by both stores.

Owns: the plain data the ``core.ports`` store ports exchange with their callers (an
enqueue's result, an attempt's outcome, the admin API's rows, the webhook outbox's rows),
and the key an erased address keeps (``hashed_address``). Does not own: how a store keeps
them (``gateway.store``), nor the domain objects themselves (``core.model``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.core.model import (
    Category,
    Event,
    NewMessage,
    Status,
    Suppression,
    Tenant,
)
from gateway.core.streams import Stream, StreamSettings

HASH_PREFIX = "sha256:"


def hashed_address(address: str) -> str:
    """The key an erased address keeps in the suppression list: ``sha256:<hex>``.

    Args:
        address: the canonical address (lower-cased local part, IDNA domain).
    """
    return HASH_PREFIX + hashlib.sha256(address.encode("utf-8")).hexdigest()


# --- the queue -------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """What a tenant used of one of its quotas (``window``: ``hourly`` or ``daily``), counted
    as the intake's quota check counts (held or queued recipients), for the metrics."""

    tenant: str
    window: str
    used: int
    limit: int

    @property
    def ratio(self) -> float:
        """``used / limit``: 1 is exhausted (0 for a limit of 0, which means none)."""
        return self.used / self.limit if self.limit > 0 else 0.0


# --- the admin API ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A message's envelope as the admin API shows it (never its content)."""

    queue_id: str
    tenant: str
    mail_from: str
    message_id: str | None
    subject: str
    size: int
    received_at: datetime
    client_address: str
    held: bool
    has_content: bool
    stream: Stream = Stream.TRANSACTIONAL  # issue 15


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Filters for :meth:`AdminQueries.list_messages`; ``None`` means "any"."""

    recipient: str | None = None
    status: str | None = None
    category: str | None = None
    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    message_id: str | None = None  # the Message-ID header's value, angle brackets included


@dataclass(frozen=True, slots=True)
class TenantSettings:
    """A tenant with the settings the admin API manages (migration 003)."""

    tenant: Tenant
    list_unsubscribe: bool = False
    bounce_notice: bool = False
    webhook_url: str = ""
    webhook_secret: str = ""
    failure_threshold: int | None = None
    failure_window: timedelta | None = None
    usernames: tuple[str, ...] = ()
    #: Streams and probation (issue 15 items 1 and 3; migration 009).
    streams: StreamSettings = field(default_factory=StreamSettings)


@dataclass(frozen=True, slots=True)
class Erasure:
    """What :meth:`AdminQueries.erase_address` removed or replaced."""

    events_deleted: int
    recipients_hashed: int
    recipients_cancelled: int
    suppressions_hashed: int
    contents_deleted: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    entry_id: int | None = None


#: Builds the audit entry of an admin write from its result, in the write's transaction
#: (``None``: nothing to audit, e.g. nothing was changed).
AuditOf = Callable[[Any], "AuditEntry | None"]


# --- the webhook outbox ----------------------------------------------------------------------

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A tenant's endpoint. ``secret`` signs the payloads: never log it."""

    tenant: str
    url: str
    secret: str

    def __repr__(self) -> str:  # keep the secret out of reprs, logs and tracebacks
        return f"WebhookTarget(tenant={self.tenant!r}, url={self.url!r}, secret=[redacted])"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One payload to deliver: ``id`` is the event id receivers dedupe on."""

    id: str
    tenant: str
    type: str
    body: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedWebhook:
    """An outbox row leased to a dispatcher, with its tenant's current endpoint.

    ``url``/``secret`` are empty when the tenant's webhook was removed since.
    """

    id: str
    tenant: str
    type: str
    body: bytes
    attempts: int
    url: str
    secret: str

    def __repr__(self) -> str:
        return f"ClaimedWebhook(id={self.id!r}, tenant={self.tenant!r}, url={self.url!r})"


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """An outbox row for the delivery history (API)."""

    id: str
    tenant: str
    type: str
    state: str
    attempts: int
    created_at: datetime
    next_at: datetime | None
    delivered_at: datetime | None
    last_error: str
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Events read from the log for the outbox writer (``webhook_events``).

    ``cursor`` is where they were read from and ``next`` where the cursor moves once their
    rows are written (``commit_webhooks``); both are opaque to the caller (SQLite: ``(0,
    event id)``; PostgreSQL: ``(transaction id, event id)``). Each event comes with its
    recipient's current status (``None`` without a recipient). ``salt`` is the database's
    own, for the webhook ids derived from event ids. ``rows`` is how many log rows were read
    (a full batch means there may be more), ``events`` only those asked for.
    """

    cursor: tuple[int, int]
    next: tuple[int, int]
    events: list[tuple[Event, Status | None]]
    salt: str
    rows: int = 0
