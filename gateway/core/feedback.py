"""Feedback loops: what is kept of a complaint report nobody could be blamed for.

Owns: the record of an unattributed feedback-loop report (``UnattributedReport``), why it
was not attributed (``Why``), how long such records are kept and how many, and the port the
store implements for them (``FeedbackReports``). Does not own: reading the report
(``bounce.feedback``), attributing it (``smtp_in.feedback_loop``) or what a complaint does
to a recipient (``core.lifecycle.effect``, the policy).

A provider's complaint loop (Yahoo's CFL, Microsoft's JMRP, any RFC 5965 ARF sender) sends
its reports to one address, ``bounce.fbl_address`` at ``bounce.domain``. A report is
attributed through the signed return path of the enclosed original (its HMAC names our
message and recipients), else through the original's Message-ID and the reported
recipient. One that neither names is stored (``UnattributedReport``), counted, and never
suppresses anybody: an address it mentions may be anybody's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

#: Unattributed reports older than this are deleted by retention.
KEEP = timedelta(days=30)
#: At most this many unattributed reports are kept (the newest): a flood of junk sent to
#: the address cannot grow the table without bound.
MAX_KEPT = 10_000
#: The longest value kept in each text column (a report's fields are remote text).
MAX_FIELD = 500
#: At most this many messages are looked at for one Message-ID.
MAX_SAME_MESSAGE_ID = 10


class Why(StrEnum):
    """Why a report was not attributed."""

    #: The enclosed original carries no return path of ours and no Message-ID we sent.
    NO_MATCH = "no_match"
    #: A return path of ours, but its token is forged, expired or names no recipient.
    BAD_TOKEN = "bad_token"  # noqa: S105 -- a reason, not a password
    #: The Message-ID is ours but the report names no recipient of that message.
    UNKNOWN_RECIPIENT = "unknown_recipient"
    #: Not a complaint report at all (no ARF part, no JMRP original).
    NOT_A_REPORT = "not_a_report"


@dataclass(frozen=True, slots=True)
class UnattributedReport:
    """A feedback-loop report kept because nobody could be attributed.

    Attributes:
        id: the row's id (``None`` before it is stored).
        received_at: when it arrived.
        feedback_type: the ARF ``Feedback-Type`` (``abuse``, ``opt-out``…).
        reporter: who sent it: the ARF ``User-Agent``, else the report's From domain.
        source_ip: the ARF ``Source-IP``.
        original_mail_from: the enclosed original's return path (or ARF ``Original-Mail-From``).
        original_rcpt_to: the reported recipient(s), comma separated.
        original_message_id: the enclosed original's Message-ID.
        arrival_date: the ARF ``Arrival-Date``, as written.
        why: why it was not attributed.
        size: the report's size in bytes.
    """

    id: int | None
    received_at: datetime
    feedback_type: str
    reporter: str
    source_ip: str
    original_mail_from: str
    original_rcpt_to: str
    original_message_id: str
    arrival_date: str
    why: Why
    size: int


class FeedbackReports(Protocol):
    """The unattributed feedback-loop reports (bounce sink, admin API, retention)."""

    async def add_feedback_report(self, report: UnattributedReport) -> int:
        """Store ``report``; returns its id."""
        ...

    async def feedback_reports(
        self, limit: int, before_id: int | None = None
    ) -> list[UnattributedReport]:
        """The newest reports first, at most ``limit``, those with an id below
        ``before_id`` when given (the next page)."""
        ...

    async def purge_feedback_reports(self, before: datetime) -> int:
        """Delete reports received before ``before`` and all but the newest ``MAX_KEPT``;
        returns how many went."""
        ...

    async def queue_ids_by_message_id(self, message_id: str) -> list[str]:
        """The queue ids of the messages (any tenant) whose Message-ID is ``message_id``,
        newest first, at most ``MAX_SAME_MESSAGE_ID``."""
        ...
