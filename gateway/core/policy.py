"""The auto-block policy: whether an outcome should suppress the recipient's address.

Owns: :func:`decide` (suppress now, after repeats, or never) and :func:`needs_alert`
(which outcomes are about *our* set-up and must reach the operator). Does not own: the
suppression list itself or the event that caused a decision (``store``: each suppression
row keeps ``event_id``), the classification of replies and reports (``bounce``), what an
outcome or a report is — final failure, delivery, complaint — (``core.lifecycle.effect``), or
turning decisions into events and webhooks (``events``).

Rules (docs/architecture.md, "Categories" and step 6):

* Only final failures count: ``bounced`` and ``expired``, as ``core.lifecycle.effect``
  reads every attempt and report (``Effect.counts_as``; ``FINAL_FAILURES``). Deferrals and
  delay notices never count, so a greylisting server cannot get a good address blocked;
  callers pass only final outcomes in the history, and :func:`decide` ignores anything else
  found there.
* ``nonexistent_address`` and a ``complaint`` suppress at once (reasons
  ``nonexistent_address``, ``complaint``; an ARF ``opt-out`` report gives ``opt_out``).
  A complaint suppresses whatever the message's status, since it arrives after delivery.
* ARF ``auth-failure`` (RFC 6591) and ``virus`` (RFC 5965 §7.3) reports are about our
  authentication or content: alert, never block. ``not-spam`` (RFC 6430) never blocks.
* ``mailbox_disabled``, ``mailbox_full`` and ``receiving_problem`` suppress with reason
  ``repeated_failures`` once ``failure_threshold`` consecutive failures fall within
  ``failure_window``, the current one included. When the current failure is
  ``mailbox_full`` the suppression expires after ``mailbox_full_suppression``; otherwise
  it is permanent until an admin lifts it.
* A final failure without a category, such as an expiry the relay did not classify,
  counts as ``receiving_problem``; an expiry given the category of its last deferral
  counts under that category (an expiry after days of ``spam_blocked`` deferrals is about
  us, not the mailbox).
* A success (``sent``, or a ``delivered`` DSN) ends the streak. ``spam_blocked``,
  ``sender_config``, ``message_too_large``, ``auto_reply`` and ``complaint`` outcomes in
  the history neither count nor end it: they say nothing about whether the mailbox works.
* ``spam_blocked``, ``sender_config`` and ``message_too_large`` never block the recipient;
  ``auto_reply`` is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.core.lifecycle import FINAL_FAILURES, NOT_OBJECTIONS
from gateway.core.model import Category, Status, SuppressionReason

__all__ = [
    "ALERTS",
    "BlockDecision",
    "PastOutcome",
    "PolicySettings",
    "decide",
    "needs_alert",
]

_STREAK = frozenset({Category.MAILBOX_DISABLED, Category.MAILBOX_FULL, Category.RECEIVING_PROBLEM})

#: Alert names returned by :func:`needs_alert`, with what the operator should know.
ALERTS: dict[str, str] = {
    "sender_config": (
        "A receiver refused our mail because of our own set-up (SPF, DKIM, DMARC, PTR or "
        "TLS); fix the sending configuration."
    ),
    "auth_failure": (
        "A receiver reported that our mail failed authentication (ARF auth-failure, "
        "RFC 6591); check SPF, DKIM and DMARC."
    ),
    "virus_report": "A receiver reported our mail as carrying a virus (ARF virus report).",
}


class _PolicyConfigLike(Protocol):
    """The fields of ``gateway.config.PolicyConfig`` (core may not import config)."""

    @property
    def failure_threshold(self) -> int: ...

    @property
    def failure_window(self) -> timedelta: ...

    @property
    def mailbox_full_suppression(self) -> timedelta: ...


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The policy's knobs.

    Args:
        failure_threshold: consecutive final failures that suppress an address.
        failure_window: how far back failures count towards the threshold.
        mailbox_full_suppression: how long a ``mailbox_full`` suppression lasts.
    """

    failure_threshold: int = 3
    failure_window: timedelta = timedelta(days=30)
    mailbox_full_suppression: timedelta = timedelta(days=7)

    @classmethod
    def from_config(cls, cfg: _PolicyConfigLike) -> PolicySettings:
        """Build the settings from the ``[policy]`` config section.

        Args:
            cfg: a ``gateway.config.PolicyConfig`` (or anything with the same fields).
        """
        return cls(cfg.failure_threshold, cfg.failure_window, cfg.mailbox_full_suppression)


@dataclass(frozen=True, slots=True)
class PastOutcome:
    """An earlier final outcome (failure or success) for the same tenant and address.

    Args:
        at: when it happened.
        status: ``bounced``, ``expired`` or ``sent``.
        category: the classifier's category, if any.
    """

    at: datetime
    status: Status
    category: Category | None


@dataclass(frozen=True, slots=True)
class BlockDecision:
    """Suppress the address.

    Args:
        reason: the suppression reason to store.
        expires_at: when the suppression lapses; ``None`` for permanent.
        alert: an alert name from :data:`ALERTS` to raise as well, if any.
    """

    reason: SuppressionReason
    expires_at: datetime | None
    alert: str | None = None


def _effective(status: Status | None, category: Category | None) -> Category | None:
    """The category a final failure counts as; ``None`` if it is not a final failure."""
    if status not in FINAL_FAILURES:
        return None
    if category is None:
        return Category.RECEIVING_PROBLEM
    return category


def _is_success(outcome: PastOutcome) -> bool:
    return outcome.status is Status.SENT or outcome.category is Category.DELIVERED


def _streak(now: datetime, history: Sequence[PastOutcome], window: timedelta) -> int:
    """Counted failures in the history since the last success, within the window."""
    count = 0
    for past in sorted(history, key=lambda p: p.at, reverse=True):
        if now - past.at > window:
            break
        if _is_success(past):
            break
        if _effective(past.status, past.category) in _STREAK:
            count += 1
    return count


def needs_alert(category: Category | None, feedback_type: str | None = None) -> str | None:
    """Whether an outcome must reach the operator, and under which alert name.

    Args:
        category: the outcome's category.
        feedback_type: the ARF ``Feedback-Type`` of a complaint (RFC 5965 §3.1), if any.

    Returns:
        A key of :data:`ALERTS`, or ``None``.
    """
    if category is Category.SENDER_CONFIG:
        return "sender_config"
    if category is Category.COMPLAINT and feedback_type is not None:
        kind = feedback_type.strip().lower()
        if kind == "auth-failure":
            return "auth_failure"
        if kind == "virus":
            return "virus_report"
    return None


def decide(
    category: Category | None,
    status: Status | None,
    now: datetime,
    history: Sequence[PastOutcome],
    settings: PolicySettings,
    feedback_type: str | None = None,
) -> BlockDecision | None:
    """Decide whether this outcome suppresses the recipient's address.

    Args:
        category: the outcome's category (``None`` if the classifier gave none).
        status: how the policy reads this outcome (``core.lifecycle.Effect.counts_as``):
            ``bounced`` or ``expired`` for a final failure (``bounced`` for an asynchronous
            failure DSN), ``sent`` for a success, ``None`` for neither. Complaints are
            decided whatever the status.
        now: the time of this outcome.
        history: earlier final outcomes for the same tenant and address, excluding this
            one; newest first by convention, though the order is not relied on.
        settings: the policy's knobs.
        feedback_type: the ARF ``Feedback-Type`` of a complaint (RFC 5965 §3.1).

    Returns:
        A :class:`BlockDecision`, or ``None`` to leave the address alone.
    """
    if category is Category.COMPLAINT:
        kind = (feedback_type or "").strip().lower()
        if kind in NOT_OBJECTIONS:
            return None
        reason = SuppressionReason.OPT_OUT if kind == "opt-out" else SuppressionReason.COMPLAINT
        return BlockDecision(reason, None)
    effective = _effective(status, category)
    if effective is Category.NONEXISTENT_ADDRESS:
        return BlockDecision(SuppressionReason.NONEXISTENT_ADDRESS, None)
    if effective not in _STREAK:
        return None
    if 1 + _streak(now, history, settings.failure_window) < settings.failure_threshold:
        return None
    expires = (
        now + settings.mailbox_full_suppression if effective is Category.MAILBOX_FULL else None
    )
    return BlockDecision(SuppressionReason.REPEATED_FAILURES, expires)
