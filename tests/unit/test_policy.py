"""The auto-block policy, as tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import PolicyConfig
from gateway.core.model import Category, Status, SuppressionReason
from gateway.core.policy import (
    ALERTS,
    BlockDecision,
    PastOutcome,
    PolicySettings,
    decide,
    needs_alert,
)

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
SETTINGS = PolicySettings()
C = Category
S = Status
R = SuppressionReason


def fail(days_ago: float, category: Category | None, status: Status = S.BOUNCED) -> PastOutcome:
    return PastOutcome(NOW - timedelta(days=days_ago), status, category)


def ok(days_ago: float) -> PastOutcome:
    return PastOutcome(NOW - timedelta(days=days_ago), S.SENT, None)


TWO_FULL = [fail(1, C.MAILBOX_FULL), fail(2, C.MAILBOX_FULL)]
PERMANENT = BlockDecision(R.REPEATED_FAILURES, None)
FOR_A_WEEK = BlockDecision(R.REPEATED_FAILURES, NOW + timedelta(days=7))


# Every category, first failure, empty history.
@pytest.mark.parametrize(
    ("category", "status", "decision"),
    [
        (C.NONEXISTENT_ADDRESS, S.BOUNCED, BlockDecision(R.NONEXISTENT_ADDRESS, None)),
        (C.NONEXISTENT_ADDRESS, S.EXPIRED, BlockDecision(R.NONEXISTENT_ADDRESS, None)),
        (C.MAILBOX_DISABLED, S.BOUNCED, None),
        (C.MAILBOX_FULL, S.BOUNCED, None),
        (C.MESSAGE_TOO_LARGE, S.BOUNCED, None),
        (C.SPAM_BLOCKED, S.BOUNCED, None),
        (C.SENDER_CONFIG, S.BOUNCED, None),
        (C.RECEIVING_PROBLEM, S.BOUNCED, None),
        (C.RECEIVING_PROBLEM, S.EXPIRED, None),
        (C.AUTO_REPLY, S.BOUNCED, None),
        (C.AUTO_REPLY, S.SENT, None),
        (C.COMPLAINT, S.SENT, BlockDecision(R.COMPLAINT, None)),
        (C.COMPLAINT, S.BOUNCED, BlockDecision(R.COMPLAINT, None)),
        (C.DELIVERED, S.SENT, None),
        (None, S.SENT, None),
        (None, S.BOUNCED, None),
        (None, S.EXPIRED, None),
        # not final: a deferral never counts, even for a nonexistent address
        (C.NONEXISTENT_ADDRESS, S.DEFERRED, None),
        (C.MAILBOX_FULL, S.DEFERRED, None),
        (C.NONEXISTENT_ADDRESS, S.REJECTED, None),  # our own intake refusal
    ],
)
def test_first_outcome(category: Category | None, status: Status, decision: object) -> None:
    assert decide(category, status, NOW, [], SETTINGS) == decision


# Every category as the third failure after two mailbox_full failures.
@pytest.mark.parametrize(
    ("category", "status", "decision"),
    [
        (C.MAILBOX_FULL, S.BOUNCED, FOR_A_WEEK),
        (C.MAILBOX_FULL, S.EXPIRED, FOR_A_WEEK),
        (C.MAILBOX_DISABLED, S.BOUNCED, PERMANENT),
        (C.RECEIVING_PROBLEM, S.BOUNCED, PERMANENT),
        (C.RECEIVING_PROBLEM, S.EXPIRED, PERMANENT),
        (None, S.EXPIRED, PERMANENT),  # an unclassified expiry is a receiving problem
        (None, S.BOUNCED, PERMANENT),
        (C.NONEXISTENT_ADDRESS, S.BOUNCED, BlockDecision(R.NONEXISTENT_ADDRESS, None)),
        (C.SPAM_BLOCKED, S.BOUNCED, None),
        (C.SPAM_BLOCKED, S.EXPIRED, None),  # days of spam deferrals are about us
        (C.SENDER_CONFIG, S.BOUNCED, None),
        (C.MESSAGE_TOO_LARGE, S.BOUNCED, None),
        (C.AUTO_REPLY, S.BOUNCED, None),
        (C.DELIVERED, S.SENT, None),
        (None, S.SENT, None),
        (C.MAILBOX_FULL, S.DEFERRED, None),
    ],
)
def test_third_outcome(category: Category | None, status: Status, decision: object) -> None:
    assert decide(category, status, NOW, TWO_FULL, SETTINGS) == decision


@pytest.mark.parametrize(
    ("history", "blocked"),
    [
        ([], False),
        ([fail(1, C.MAILBOX_FULL)], False),
        ([fail(1, C.MAILBOX_FULL), fail(2, C.MAILBOX_FULL)], True),
        ([fail(1, C.MAILBOX_DISABLED), fail(2, C.RECEIVING_PROBLEM, S.EXPIRED)], True),
        ([fail(1, None, S.EXPIRED), fail(2, C.MAILBOX_FULL)], True),
        # a success resets the counter
        ([fail(1, C.MAILBOX_FULL), ok(2), fail(3, C.MAILBOX_FULL)], False),
        ([ok(0.5), fail(1, C.MAILBOX_FULL), fail(2, C.MAILBOX_FULL)], False),
        ([PastOutcome(NOW - timedelta(days=1), S.BOUNCED, C.DELIVERED), *TWO_FULL[1:]], False),
        # old failures outside the window do not count
        ([fail(1, C.MAILBOX_FULL), fail(31, C.MAILBOX_FULL)], False),
        ([fail(29, C.MAILBOX_FULL), fail(30, C.MAILBOX_FULL)], True),
        ([fail(1, C.MAILBOX_FULL), fail(30.01, C.MAILBOX_FULL), fail(31, C.MAILBOX_FULL)], False),
        # failures about us or the message neither count nor reset
        ([fail(1, C.SPAM_BLOCKED), fail(2, C.SPAM_BLOCKED)], False),
        ([fail(1, C.SENDER_CONFIG), fail(2, C.MAILBOX_FULL), fail(3, C.MAILBOX_FULL)], True),
        ([fail(1, C.MESSAGE_TOO_LARGE), fail(2, C.MAILBOX_FULL), fail(3, C.MAILBOX_FULL)], True),
        ([fail(1, C.AUTO_REPLY, S.SENT), fail(2, C.MAILBOX_FULL), fail(3, C.MAILBOX_FULL)], False),
        ([fail(1, C.AUTO_REPLY), fail(2, C.MAILBOX_FULL), fail(3, C.MAILBOX_FULL)], True),
        # deferrals never count: stray non-final rows are ignored
        ([fail(1, C.MAILBOX_FULL, S.DEFERRED), fail(2, C.MAILBOX_FULL, S.DEFERRED)], False),
        (
            [
                fail(1, C.MAILBOX_FULL, S.DEFERRED),
                fail(2, C.MAILBOX_FULL),
                fail(3, C.MAILBOX_FULL, S.DEFERRED),
                fail(4, C.MAILBOX_FULL),
            ],
            True,
        ),
        # order of the history does not matter
        ([fail(2, C.MAILBOX_FULL), ok(1), fail(3, C.MAILBOX_FULL)], False),
        ([fail(2, C.MAILBOX_FULL), ok(3), fail(1, C.MAILBOX_FULL)], True),
    ],
)
def test_streak(history: list[PastOutcome], blocked: bool) -> None:
    decision = decide(C.RECEIVING_PROBLEM, S.BOUNCED, NOW, history, SETTINGS)
    assert (decision is not None) is blocked
    if decision is not None:
        assert decision == PERMANENT


def test_three_mailbox_full_within_the_window_suppress_for_a_limited_time() -> None:
    decision = decide(C.MAILBOX_FULL, S.BOUNCED, NOW, TWO_FULL, SETTINGS)
    assert decision == BlockDecision(R.REPEATED_FAILURES, NOW + timedelta(days=7))


def test_greylisting_cannot_block_a_good_address() -> None:
    # Twenty deferrals then a success: the history holds only finals, so one SENT.
    assert decide(C.RECEIVING_PROBLEM, S.DEFERRED, NOW, [], SETTINGS) is None
    assert decide(C.RECEIVING_PROBLEM, S.BOUNCED, NOW, [ok(1)], SETTINGS) is None


@pytest.mark.parametrize(
    ("feedback_type", "decision"),
    [
        (None, BlockDecision(R.COMPLAINT, None)),
        ("abuse", BlockDecision(R.COMPLAINT, None)),
        ("fraud", BlockDecision(R.COMPLAINT, None)),
        ("other", BlockDecision(R.COMPLAINT, None)),
        ("opt-out", BlockDecision(R.OPT_OUT, None)),
        (" Opt-Out ", BlockDecision(R.OPT_OUT, None)),
        ("auth-failure", None),
        ("AUTH-FAILURE", None),
        ("virus", None),
        ("not-spam", None),
    ],
)
def test_complaints(feedback_type: str | None, decision: object) -> None:
    assert decide(C.COMPLAINT, S.SENT, NOW, [], SETTINGS, feedback_type) == decision


def test_auth_failure_never_blocks_even_after_failures() -> None:
    assert decide(C.COMPLAINT, S.BOUNCED, NOW, TWO_FULL * 5, SETTINGS, "auth-failure") is None


@pytest.mark.parametrize(
    ("category", "feedback_type", "alert"),
    [
        (C.SENDER_CONFIG, None, "sender_config"),
        (C.COMPLAINT, "auth-failure", "auth_failure"),
        (C.COMPLAINT, "virus", "virus_report"),
        (C.COMPLAINT, "abuse", None),
        (C.COMPLAINT, None, None),
        (C.SPAM_BLOCKED, None, None),
        (C.NONEXISTENT_ADDRESS, None, None),
        (None, None, None),
    ],
)
def test_needs_alert(category: Category | None, feedback_type: str | None, alert: object) -> None:
    assert needs_alert(category, feedback_type) == alert
    if alert is not None:
        assert alert in ALERTS


@pytest.mark.parametrize("category", [*Category, None])
@pytest.mark.parametrize("status", list(Status))
def test_every_combination_decides_without_error(category: Category | None, status: Status) -> None:
    decision = decide(category, status, NOW, TWO_FULL, SETTINGS)
    assert decision is None or isinstance(decision.reason, SuppressionReason)


def test_threshold_and_window_are_settings() -> None:
    strict = PolicySettings(failure_threshold=1, failure_window=timedelta(days=1))
    assert decide(C.MAILBOX_DISABLED, S.BOUNCED, NOW, [], strict) == PERMANENT
    lax = PolicySettings(failure_threshold=5)
    assert decide(C.MAILBOX_DISABLED, S.BOUNCED, NOW, TWO_FULL, lax) is None


def test_from_config() -> None:
    cfg = PolicyConfig(
        failure_threshold=4,
        failure_window=timedelta(days=10),
        mailbox_full_suppression=timedelta(days=2),
    )
    assert PolicySettings.from_config(cfg) == PolicySettings(
        4, timedelta(days=10), timedelta(days=2)
    )

    @dataclass
    class Duck:
        failure_threshold: int = 2
        failure_window: timedelta = timedelta(days=1)
        mailbox_full_suppression: timedelta = timedelta(days=1)

    assert PolicySettings.from_config(Duck()).failure_threshold == 2
    assert PolicySettings.from_config(PolicyConfig()) == PolicySettings()
