"""The domain's nouns: categories, statuses, reasons, and the plain records that carry them.

Owns: the vocabulary every layer shares. Does not own: persistence (``store``), wire
formats (``smtp_in``/``relay``) or classification rules (``bounce``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Category(StrEnum):
    """What a failure, success or report means (docs/architecture.md, "Categories")."""

    NONEXISTENT_ADDRESS = "nonexistent_address"
    MAILBOX_DISABLED = "mailbox_disabled"
    MAILBOX_FULL = "mailbox_full"
    MESSAGE_TOO_LARGE = "message_too_large"
    SPAM_BLOCKED = "spam_blocked"
    SENDER_CONFIG = "sender_config"
    RECEIVING_PROBLEM = "receiving_problem"
    AUTO_REPLY = "auto_reply"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"

    @property
    def category7(self) -> str:
        """The seven-way fold support staff use (docs/architecture.md; corpus ``category7``)."""
        return _CATEGORY7[self]


_CATEGORY7 = {
    Category.NONEXISTENT_ADDRESS: "nonexistent_address",
    Category.MAILBOX_DISABLED: "nonexistent_address",
    Category.MAILBOX_FULL: "mailbox_full",
    Category.MESSAGE_TOO_LARGE: "receiving_problem",
    Category.SPAM_BLOCKED: "spam_blocked",
    Category.SENDER_CONFIG: "spam_blocked",
    Category.RECEIVING_PROBLEM: "receiving_problem",
    Category.AUTO_REPLY: "auto_reply",
    Category.COMPLAINT: "complaint",
    Category.DELIVERED: "delivered",
}


class Status(StrEnum):
    """A recipient's state row."""

    REJECTED = "rejected"
    QUEUED = "queued"
    DEFERRED = "deferred"
    SENT = "sent"
    BOUNCED = "bounced"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    HELD = "held"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {Status.REJECTED, Status.SENT, Status.BOUNCED, Status.EXPIRED, Status.SUPPRESSED}
)


class SuppressionReason(StrEnum):
    REPEATED_FAILURES = "repeated_failures"
    NONEXISTENT_ADDRESS = "nonexistent_address"
    COMPLAINT = "complaint"
    OPT_OUT = "opt_out"
    MANUAL = "manual"


class EventType(StrEnum):
    """What an event row records about a recipient."""

    REJECTED = "rejected"  # refused at intake (RCPT)
    # Accepted, but the domain looks like a misspelt popular one (``details["suggestion"]``
    # holds the likely address). A warning: it never changes the recipient's status.
    POSSIBLE_TYPO = "possible_typo"
    QUEUED = "queued"  # accepted with 250
    DUPLICATE = "duplicate"  # same Message-ID retried within the window: 250, not queued again
    SENT = "sent"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    EXPIRED = "expired"
    REPORT = "report"  # asynchronous DSN/ARF/auto-reply received on the return path
    SUPPRESSED = "suppressed"
    UNSUPPRESSED = "unsuppressed"
    HELD = "held"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    allowed_sender_domains: tuple[str, ...] = ()
    hourly_quota: int | None = None
    daily_quota: int | None = None


@dataclass(frozen=True, slots=True)
class Suppression:
    tenant: str
    address: str
    reason: SuppressionReason
    since: datetime
    expires_at: datetime | None = None
    event_id: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """An accepted transaction, ready to be committed before the ``250``.

    ``content`` is the message exactly as received, with our headers prepended; it is never
    parsed and regenerated (CVE-2023-27043, CVE-2024-6923). ``hold`` names the quota holds
    its transaction took at ``RCPT`` (``Store.reserve_quota``): the enqueue settles them in
    its own transaction. Empty when none were taken.
    """

    queue_id: str
    tenant: str
    mail_from: str
    recipients: tuple[str, ...]
    content: bytes
    message_id: str | None
    subject: str
    received_at: datetime
    client_address: str = ""
    hold: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient of a queued message, claimed by the relay for an attempt."""

    recipient_id: int
    queue_id: str
    tenant: str
    mail_from: str
    address: str
    attempts: int
    received_at: datetime
    first_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    recipient_id: int | None
    tenant: str
    address: str
    type: EventType
    at: datetime
    queue_id: str | None = None
    category: Category | None = None
    reply_code: int | None = None
    enhanced: str | None = None
    text: str = ""
    remote_host: str = ""
    reason: str = ""
    details: dict[str, str] = field(default_factory=dict)
    event_id: int | None = None
