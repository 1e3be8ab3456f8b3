"""What happens to a recipient: one pure rule for attempts, reports and suppressions.

Owns: :func:`effect`, the one rule for what a delivery attempt, a report on the return path
(RFC 3464 DSN, RFC 5965 ARF complaint, RFC 3834 auto-reply) or a suppression found before an
attempt does to a recipient — its new status (or none), whether the row takes the event's
category and reply, the event's type and reason, whether it is a final failure and how the
auto-block policy reads it; :func:`effect_of_event`, the same rule read back from an event
row (the policy's history, the webhooks and the metrics read the log, not the live call);
and :func:`transition`, an attempt's effect with its next due time. Does not own: retry
intervals (``core.schedule``), whether the address gets suppressed or the operator alerted
(``core.policy``), or reading a report (``bounce``).

The rule for reports, first match:

* ``complaint`` (ARF): the status stays (a complaint arrives after delivery); the policy
  decides at once (``abuse``, ``fraud``, ``opt-out`` suppress; ``auth-failure`` and
  ``virus`` alert the operator). The row takes the category only when the recipient objects:
  ``auth-failure`` (RFC 6591), ``virus`` and ``not-spam`` (RFC 6430) leave it alone.
* ``auto_reply``: the status stays; the row notes it (``sent:auto_reply`` in the texts).
* a DSN ``Action: delayed`` (RFC 3464 §2.3.3): a delay notice changes nothing.
* ``Action: delivered``/``relayed``/``expanded``, or category ``delivered``: the status
  stays; the policy reads it as a delivery (it ends a failure streak).
* no category (nothing could be read): recorded, nothing more.
* a provider's challenge (UOL, BOL, Terra anti-spam hold the message until the sender
  answers): the recipient becomes ``provider_hold`` with reason ``provider_challenge``; not a
  failure, the policy never counts it (issue 12 item 4).
* any other category: a final failure. The recipient becomes ``bounced`` — a later bounce
  of a ``sent`` one, or one the relay was still retrying after a reply it never got — and the
  policy counts it.

Every report is recorded as a ``report`` event with reason ``report_<kind>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from gateway.core.model import Category, EventType, Reason, Status, SuppressionReason
from gateway.core.schedule import next_attempt, retry_hint

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.core.model import Delivery, Event
    from gateway.core.replies import Reply


class Result(StrEnum):
    """The partition an attempt put a recipient in (docs/style.md §6)."""

    ACCEPTED = "accepted"
    DEFERRED = "deferred"
    BOUNCED = "bounced"


#: Final statuses that are failures: what the auto-block policy counts (``core.policy``).
FINAL_FAILURES = frozenset({Status.BOUNCED, Status.EXPIRED})
#: Statuses of a recipient still waiting for an attempt.
PENDING = frozenset({Status.QUEUED, Status.DEFERRED, Status.HELD})
#: The RFC 3464 §2.3.3 actions of a DSN.
DSN_ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")
#: ARF feedback types: RFC 5965 §7.3, ``not-spam`` (RFC 6430), ``auth-failure`` (RFC 6591),
#: and ``opt-out`` as feedback loops send it.
FEEDBACK_TYPES = ("abuse", "fraud", "virus", "other", "not-spam", "auth-failure", "opt-out")
#: Complaints that are not the recipient objecting to our mail: about our authentication
#: (RFC 6591), about our content (a virus), or a retraction (RFC 6430). They never touch the
#: recipient, and the policy never blocks for them.
NOT_OBJECTIONS = frozenset({"auth-failure", "virus", "not-spam"})
_DELIVERY_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
_REPORT_PREFIX = "report_"


@dataclass(frozen=True, slots=True)
class Attempt:
    """A delivery attempt's outcome for one recipient.

    Args:
        result: the partition the attempt put it in.
        category: the classifier's category of a failure reply.
        expired: a deferral past ``relay.max_queue_lifetime`` (RFC 5321 §4.5.4.1).
    """

    result: Result
    category: Category | None = None
    expired: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    """What a report on the return path says about one recipient (``bounce.BounceReport``).

    Args:
        kind: the reader that produced it (``dsn``, ``arf``, ``auto_reply``, …).
        category: the classifier's category, ``None`` when nothing could be read.
        feedback_type: the ARF ``Feedback-Type`` (RFC 5965 §3.1), for complaints.
        action: the DSN ``Action`` (RFC 3464 §2.3.3).
        provider: the challenge-response provider holding the message (``uol``, ``bol``,
            ``terra``): the reader's ``provider_hint``.
    """

    kind: str
    category: Category | None
    feedback_type: str | None = None
    action: str | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class Suppressed:
    """The address was suppressed after the recipient was queued: found before an attempt."""

    reason: SuppressionReason


Cause = Attempt | Report | Suppressed


@dataclass(frozen=True, slots=True)
class Effect:
    """What a cause does to a recipient.

    Args:
        event: the event row's type.
        reason: the event's machine reason (docs/style.md §8).
        category: the event's category.
        status: the recipient's new status; ``None`` leaves it as it is.
        updates_row: the row takes the event's category and reply (with ``status``, if any);
            otherwise only the event is recorded.
        counts_as: how the auto-block policy reads it, now and in later histories:
            ``bounced``/``expired`` for a final failure, ``sent`` for a delivery (it ends a
            failure streak), ``None`` when it never counts.
        decide: the policy decides about the address now (final failures and complaints).
    """

    event: EventType
    reason: Reason
    category: Category | None
    status: Status | None
    updates_row: bool
    counts_as: Status | None
    decide: bool

    @property
    def final_failure(self) -> bool:
        """A final failure: the policy counts it, the metrics and webhooks call it a bounce
        (an expiry apart), and a bounce notice may tell the sender."""
        return self.counts_as in FINAL_FAILURES


def effect(current: Status | None, cause: Cause) -> Effect:
    """What ``cause`` does to a recipient whose status is ``current``.

    Args:
        current: the recipient's status before it, ``None`` when not known (an event row
            read back from the log: then it is taken as one the gateway may have handed over).
        cause: an attempt's outcome, a report, or a suppression found before an attempt.
    """
    if isinstance(cause, Attempt):
        return _attempt(cause)
    if isinstance(cause, Suppressed):
        status = Status.SUPPRESSED if current is None or current in PENDING else None
        return Effect(
            EventType.SUPPRESSED, cause.reason.reason, None, status, status is not None, None, False
        )
    return _report(current, cause)


def _attempt(attempt: Attempt) -> Effect:
    category = attempt.category
    if attempt.result is Result.ACCEPTED:
        return Effect(
            EventType.SENT,
            Reason.ACCEPTED,
            Category.DELIVERED,
            Status.SENT,
            True,
            Status.SENT,
            False,
        )
    if attempt.result is Result.BOUNCED:
        return Effect(
            EventType.BOUNCED,
            Reason.PERMANENT_FAILURE,
            category,
            Status.BOUNCED,
            True,
            Status.BOUNCED,
            True,
        )
    if attempt.expired:
        return Effect(
            EventType.EXPIRED,
            Reason.QUEUE_LIFETIME_EXCEEDED,
            category or Category.RECEIVING_PROBLEM,
            Status.EXPIRED,
            True,
            Status.EXPIRED,
            True,
        )
    return Effect(
        EventType.DEFERRED, Reason.TRANSIENT_FAILURE, category, Status.DEFERRED, True, None, False
    )


def _report(current: Status | None, report: Report) -> Effect:
    reason = Reason.of_report(report.kind)
    category = report.category
    action = (report.action or "").strip().lower()

    def keep(updates_row: bool = False, counts_as: Status | None = None) -> Effect:
        return Effect(EventType.REPORT, reason, category, None, updates_row, counts_as, False)

    if category is Category.COMPLAINT:
        objection = (report.feedback_type or "").strip().lower() not in NOT_OBJECTIONS
        return Effect(EventType.REPORT, reason, category, None, objection, None, True)
    if category is Category.AUTO_REPLY:
        return keep(updates_row=True)
    if action == "delayed":
        return keep()
    if action in _DELIVERY_ACTIONS or category is Category.DELIVERED:
        return keep(counts_as=Status.SENT)
    if category is None:
        return keep()
    if report.provider and category is Category.SPAM_BLOCKED:
        return Effect(
            EventType.REPORT,
            Reason.PROVIDER_CHALLENGE,
            category,
            Status.PROVIDER_HOLD,
            True,
            None,
            False,
        )
    status = None if current is Status.BOUNCED else Status.BOUNCED
    return Effect(
        EventType.REPORT, reason, category, status, status is not None, Status.BOUNCED, True
    )


def effect_of_event(event: Event, current: Status | None = None) -> Effect | None:
    """:func:`effect` read back from an event row; ``None`` for a row that records no
    attempt, report or cancellation (``queued``, ``rejected``, an address's suppression, …).

    Args:
        event: the row.
        current: the recipient's status before the event, if known.
    """
    cause: Cause
    if event.type is EventType.SENT:
        cause = Attempt(Result.ACCEPTED, event.category)
    elif event.type is EventType.BOUNCED:
        cause = Attempt(Result.BOUNCED, event.category)
    elif event.type is EventType.DEFERRED:
        cause = Attempt(Result.DEFERRED, event.category)
    elif event.type is EventType.EXPIRED:
        cause = Attempt(Result.DEFERRED, event.category, expired=True)
    elif event.type is EventType.REPORT:
        cause = Report(
            event.reason.removeprefix(_REPORT_PREFIX),
            event.category,
            event.details.get("feedback_type"),
            event.details.get("action"),
            event.details.get("provider_hint")
            if event.reason == Reason.PROVIDER_CHALLENGE
            else None,
        )
    elif event.type is EventType.SUPPRESSED and event.recipient_id is not None:
        try:
            cause = Suppressed(SuppressionReason(event.reason))
        except ValueError:
            return None
    else:
        return None
    return effect(current, cause)


@dataclass(frozen=True, slots=True)
class Transition:
    """An attempt's effect and the recipient's next due time (deferred only)."""

    effect: Effect
    due_at: datetime | None

    @property
    def status(self) -> Status:
        status = self.effect.status
        assert status is not None  # an attempt always sets one (``_attempt``)
        return status

    @property
    def event(self) -> EventType:
        return self.effect.event

    @property
    def category(self) -> Category | None:
        return self.effect.category

    @property
    def reason(self) -> Reason:
        return self.effect.reason


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
    if result is not Result.DEFERRED:
        return Transition(effect(None, Attempt(result, category)), None)
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
    # RFC 5321 §4.5.4.1: give up after the maximum queue lifetime.
    return Transition(effect(None, Attempt(result, category, expired=due is None)), due)
