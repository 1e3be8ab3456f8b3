"""The domain's nouns: categories, statuses, reasons, and the plain records that carry them.

Owns: the vocabulary every layer shares. Does not own: persistence (``store``), wire
formats (``smtp_in``/``relay``) or classification rules (``bounce``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gateway.core.addresses import as_given

# Part of this vocabulary, defined in its own module for the bounce classifier's start-up.
from gateway.core.category import Category as Category  # noqa: PLC0414 (mypy re-export)
from gateway.core.streams import Scope, Stream, StreamSettings
from gateway.core.tenant_policy import TenantPolicy


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
    # Held by the recipient's provider until the sender answers its challenge (UOL, BOL,
    # Terra anti-spam; issue 12 item 4): the gateway's work is done, nothing was refused.
    PROVIDER_HOLD = "provider_hold"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        Status.REJECTED,
        Status.SENT,
        Status.BOUNCED,
        Status.EXPIRED,
        Status.SUPPRESSED,
        Status.PROVIDER_HOLD,
    }
)


class Reason(StrEnum):
    """The machine reason stored on every event and suppression (docs/style.md §8).

    The API, the support page, the webhooks and the metrics read it as it is stored; none
    of them works a reason out from a reply's words. Writing a value that is not a member
    is a programming error: the stores refuse it (``store.rows``).
    """

    # Refused at RCPT (``rejected`` events), one per check of ``gateway.services.checks``.
    INVALID = "invalid"
    TYPO = "typo"
    NO_SUCH_DOMAIN = "no_such_domain"
    NULL_MX = "null_mx"
    DNS_TEMPFAIL = "dns_tempfail"
    SUPPRESSED = "suppressed"
    QUOTA = "quota"
    TOO_MANY_RECIPIENTS = "too_many_recipients"
    STORE_UNAVAILABLE = "store_unavailable"
    # Accepted at intake.
    QUEUED = "queued"
    POSSIBLE_TYPO = "possible_typo"
    DUPLICATE_MESSAGE_ID = "duplicate_message_id"
    # Delivery attempts (``core.lifecycle.effect``).
    ACCEPTED = "accepted"
    TRANSIENT_FAILURE = "transient_failure"
    PERMANENT_FAILURE = "permanent_failure"
    QUEUE_LIFETIME_EXCEEDED = "queue_lifetime_exceeded"
    # Reports on the return path: ``report_<kind>`` of the reader (``bounce.BounceReport``);
    # ``report_other`` for a kind this list does not name.
    REPORT_DSN = "report_dsn"
    REPORT_ARF = "report_arf"
    REPORT_AUTO_REPLY = "report_auto_reply"
    REPORT_NONSTANDARD = "report_nonstandard"
    REPORT_NONE = "report_none"
    REPORT_UNPARSEABLE = "report_unparseable"
    REPORT_OTHER = "report_other"
    # A provider's challenge-response report (UOL, BOL, Terra): ``provider_hold``.
    PROVIDER_CHALLENGE = "provider_challenge"
    # Suppressions (``SuppressionReason``: the same values) and their lifting.
    REPEATED_FAILURES = "repeated_failures"
    NONEXISTENT_ADDRESS = "nonexistent_address"
    COMPLAINT = "complaint"
    OPT_OUT = "opt_out"
    MANUAL = "manual"
    ADMIN_UNBLOCK = "admin_unblock"
    # The first blocking failure during the probation an unblock started (issue 15).
    PROBATION_FAILURE = "probation_failure"
    # Queue control by an administrator.
    HELD_BY_ADMIN = "held_by_admin"
    RELEASED_BY_ADMIN = "released_by_admin"
    DELETED_BY_ADMIN = "deleted_by_admin"
    # Hold instead of refuse (issue 15): a held recipient (``held``, reason ``suppressed``)
    # is released by an unblock (``admin_unblock``) or ends ``expired`` past its window.
    HOLD_WINDOW_EXCEEDED = "hold_window_exceeded"
    # A tenant paused and resumed (issue 15): automatically on a rate, or by an admin.
    BOUNCE_RATE = "bounce_rate"
    COMPLAINT_RATE = "complaint_rate"
    PAUSED_BY_ADMIN = "paused_by_admin"
    RESUMED_BY_ADMIN = "resumed_by_admin"
    # A row written before reasons were typed whose old reason could not be read back
    # (migration 007), and an ``Event`` built without one.
    LEGACY_UNKNOWN = "legacy_unknown"

    @classmethod
    def of_report(cls, kind: str) -> Reason:
        """The reason of a report read by ``kind`` (``dsn``, ``arf``, ``auto_reply``, …)."""
        try:
            return cls(f"report_{kind}")
        except ValueError:
            return cls.REPORT_OTHER


#: The reasons of a refusal at RCPT, in the order of the checklist.
INTAKE_REASONS = (
    Reason.TOO_MANY_RECIPIENTS,
    Reason.INVALID,
    Reason.TYPO,
    Reason.NO_SUCH_DOMAIN,
    Reason.NULL_MX,
    Reason.DNS_TEMPFAIL,
    Reason.SUPPRESSED,
    Reason.QUOTA,
    Reason.STORE_UNAVAILABLE,
)


class SuppressionReason(StrEnum):
    """Why an address is suppressed: the subset of :class:`Reason` a suppression takes."""

    REPEATED_FAILURES = Reason.REPEATED_FAILURES.value
    NONEXISTENT_ADDRESS = Reason.NONEXISTENT_ADDRESS.value
    COMPLAINT = Reason.COMPLAINT.value
    OPT_OUT = Reason.OPT_OUT.value
    MANUAL = Reason.MANUAL.value
    PROBATION_FAILURE = Reason.PROBATION_FAILURE.value

    @property
    def reason(self) -> Reason:
        """The same value as a :class:`Reason` (what an event row stores)."""
        return Reason(self.value)


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
    # The tenant was paused or resumed (issue 15): ``address`` is empty, no recipient.
    TENANT_PAUSED = "tenant_paused"
    TENANT_RESUMED = "tenant_resumed"


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    allowed_sender_domains: tuple[str, ...] = ()
    hourly_quota: int | None = None
    daily_quota: int | None = None
    #: Hold instead of refuse and the automatic pause (issue 15; ``core.tenant_policy``).
    policy: TenantPolicy = field(default_factory=TenantPolicy)
    #: Streams and probation (issue 15 items 1 and 3; ``core.streams``).
    streams: StreamSettings = field(default_factory=StreamSettings)


@dataclass(frozen=True, slots=True)
class Suppression:
    tenant: str
    address: str
    reason: SuppressionReason
    since: datetime
    expires_at: datetime | None = None
    event_id: int | None = None
    note: str = ""
    #: Which streams it stops (``core.streams``); one row per scope per address.
    scope: Scope = Scope.ALL


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
    stream: Stream = Stream.TRANSACTIONAL
    #: The recipients as the client gave them at ``RCPT`` (aiosmtpd's ``rcpt_tos``: any
    #: order, repeats and refused ones allowed), for ``Delivery.rcpt_to``.
    rcpt_to: tuple[str, ...] = ()

    def rcpt_to_list(self) -> list[str]:
        """For each of ``recipients``, in order: its form given at ``RCPT`` where that is not
        the address itself, else "" (``core.addresses.as_given``)."""
        return [as_given(address, self.rcpt_to) for address in self.recipients]


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
    stream: Stream = Stream.TRANSACTIONAL
    #: The address as the client gave it at ``RCPT`` (its local part as received, RFC 5321
    #: §2.4: case-sensitive on the wire), "" where that is ``address``. Only ``RCPT TO``
    #: uses it (``wire_address``); ``address``, lower-cased, is the key of every look-up.
    rcpt_to: str = ""

    @property
    def wire_address(self) -> str:
        """The forward-path the relay sends: the address as given at intake."""
        return self.rcpt_to or self.address


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
    reason: Reason = Reason.LEGACY_UNKNOWN
    details: dict[str, str] = field(default_factory=dict)
    event_id: int | None = None
