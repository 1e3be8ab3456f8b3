"""A tenant's delivery policy: hold instead of refuse, and the automatic pause (issue 15).

Owns: the vocabulary of issue 15 items 2 and 4 as plain data and pure functions — what a
tenant does with mail to a suppressed address (:class:`SuppressedAction`), how long a held
recipient waits for an unblock, whether the tenant is paused and why, the thresholds of the
automatic pause, and the decision itself (:func:`pause_verdict`). Does not own: where the
settings are kept (``store``), when the rates are measured (``services.holds``) or what the
intake and the relay do with a paused tenant (``smtp_in``, ``relay``).

A field left ``None`` takes the operator's default (``[policy]`` in ``config/gateway.toml``):
:func:`resolve` lays a tenant's own values over :class:`PolicyDefaults`.

Why rates over a window with a minimum: a tenant that sent 20 messages and had 2 bounces is
noise, one that sent 5,000 with 300 bounces has a bought list or a broken integration. The
defaults follow the big mailbox providers' reviews (5 % bounces, 0.1 % complaints, over at
least 500 messages in 24 hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

__all__ = [
    "PauseCause",
    "PauseVerdict",
    "PolicyDefaults",
    "ResolvedPolicy",
    "SuppressedAction",
    "TenantPolicy",
    "WindowCounts",
    "pause_verdict",
    "resolve",
]

T = TypeVar("T")


class SuppressedAction(StrEnum):
    """What the intake does with a recipient whose address is suppressed."""

    REFUSE = "refuse"  # 550 at RCPT (the behaviour before issue 15)
    HOLD = "hold"  # 250, kept ``held`` until unblocked or ``hold_window`` passes


class PauseCause(StrEnum):
    """Why a tenant is paused (stored with the pause, shown by the API and the page)."""

    BOUNCE_RATE = "bounce_rate"
    COMPLAINT_RATE = "complaint_rate"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """A tenant's own policy settings (``None``: the operator's default) and pause state."""

    suppressed_action: SuppressedAction | None = None
    hold_window: timedelta | None = None
    pause_bounce_rate: float | None = None
    pause_complaint_rate: float | None = None
    pause_min_messages: int | None = None
    pause_window: timedelta | None = None
    pause_delivery: bool | None = None
    paused: bool = False
    paused_at: datetime | None = None
    pause_cause: PauseCause | None = None
    pause_note: str = ""
    #: The last resume: the judge counts outcomes after it only.
    resumed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PolicyDefaults:
    """The operator's defaults (``[policy]``)."""

    suppressed_action: SuppressedAction = SuppressedAction.REFUSE
    hold_window: timedelta = timedelta(days=7)
    pause_bounce_rate: float = 0.05
    pause_complaint_rate: float = 0.001
    pause_min_messages: int = 500
    pause_window: timedelta = timedelta(hours=24)
    pause_delivery: bool = True


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    """A tenant's policy with every default applied."""

    suppressed_action: SuppressedAction
    hold_window: timedelta
    pause_bounce_rate: float
    pause_complaint_rate: float
    pause_min_messages: int
    pause_window: timedelta
    pause_delivery: bool
    paused: bool
    paused_at: datetime | None
    pause_cause: PauseCause | None
    pause_note: str

    @property
    def holds(self) -> bool:
        return self.suppressed_action is SuppressedAction.HOLD


def resolve(policy: TenantPolicy, defaults: PolicyDefaults) -> ResolvedPolicy:
    """``policy`` with ``defaults`` filling what the tenant left unset."""

    return ResolvedPolicy(
        suppressed_action=pick(policy.suppressed_action, defaults.suppressed_action),
        hold_window=pick(policy.hold_window, defaults.hold_window),
        pause_bounce_rate=pick(policy.pause_bounce_rate, defaults.pause_bounce_rate),
        pause_complaint_rate=pick(policy.pause_complaint_rate, defaults.pause_complaint_rate),
        pause_min_messages=pick(policy.pause_min_messages, defaults.pause_min_messages),
        pause_window=pick(policy.pause_window, defaults.pause_window),
        pause_delivery=pick(policy.pause_delivery, defaults.pause_delivery),
        paused=policy.paused,
        paused_at=policy.paused_at,
        pause_cause=policy.pause_cause,
        pause_note=policy.pause_note,
    )


def pick(own: T | None, default: T) -> T:
    """``own``, or ``default`` when unset."""
    return default if own is None else own


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """A tenant's delivery outcomes over the pause window: recipients ``sent`` and
    ``bounced`` (final), and ``complaints`` (ARF reports)."""

    sent: int = 0
    bounced: int = 0
    complaints: int = 0

    @property
    def messages(self) -> int:
        return self.sent + self.bounced


@dataclass(frozen=True, slots=True)
class PauseVerdict:
    """Pause (``cause`` set) or not, with the rates measured, for the event and the log."""

    cause: PauseCause | None
    bounce_rate: float
    complaint_rate: float
    messages: int

    def sentence(self) -> str:
        """What the pause event says, in plain words."""
        return (
            f"bounce rate {self.bounce_rate:.2%}, complaint rate {self.complaint_rate:.3%}"
            f" over {self.messages} messages"
        )


def pause_verdict(counts: WindowCounts, policy: ResolvedPolicy) -> PauseVerdict:
    """Whether ``counts`` over the window pause a tenant with ``policy``.

    Fewer than ``pause_min_messages`` outcomes never pause (too few to judge). A rate at
    the threshold does not pause; over it does. Bounces are judged first.
    """
    total = counts.messages
    bounce = counts.bounced / total if total else 0.0
    complaint = counts.complaints / total if total else 0.0
    cause: PauseCause | None = None
    if total >= policy.pause_min_messages and total > 0:
        if bounce > policy.pause_bounce_rate:
            cause = PauseCause.BOUNCE_RATE
        elif complaint > policy.pause_complaint_rate:
            cause = PauseCause.COMPLAINT_RATE
    return PauseVerdict(cause, bounce, complaint, total)
