"""What an attempt, a report or a suppression does to a recipient (``core.lifecycle.effect``).

The tables are generated from the enums and the parser's kinds, so a new status, category,
kind, feedback type or DSN action is covered the day it is added. Each required behaviour is
stated once, as a class of combinations with what must hold for it; every combination must
fall in exactly one class. Then every reader of the events log — the webhooks, the metrics
(and the policy's history: ``test_policy_history.py``) — must give the same answer as the
live decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import product

import pytest

from gateway.bounce.report import KINDS
from gateway.core.lifecycle import (
    DSN_ACTIONS,
    FEEDBACK_TYPES,
    Attempt,
    Cause,
    Effect,
    Report,
    Result,
    Suppressed,
    effect,
    effect_of_event,
)
from gateway.core.model import Category, Event, EventType, Status, SuppressionReason
from gateway.observe.events import RecipientChanged
from gateway.observe.metrics import Metrics
from gateway.observe.webhooks import logged_change, webhook_type

STATUSES: list[Status | None] = [*Status, None]
CATEGORIES: list[Category | None] = [*Category, None]
FEEDBACK: list[str | None] = [*FEEDBACK_TYPES, "Auth-Failure", None]  # case is not a kind
ACTIONS: list[str | None] = [*DSN_ACTIONS, "Delayed", None]
REPORTS = [Report(*combo) for combo in product(KINDS, CATEGORIES, FEEDBACK, ACTIONS)]
ATTEMPTS = [Attempt(*combo) for combo in product(Result, CATEGORIES, (False, True))]
CANCELLATIONS = [Suppressed(reason) for reason in SuppressionReason]
CAUSES: list[Cause] = [*REPORTS, *ATTEMPTS, *CANCELLATIONS]

# Words of the requirement (issue 13, docs/architecture.md "Categories").
FAILURE_CATEGORIES = frozenset(Category) - {
    Category.COMPLAINT,
    Category.AUTO_REPLY,
    Category.DELIVERED,
}
PENDING = {Status.QUEUED, Status.DEFERRED, Status.HELD}
DELIVERY_ACTIONS = {"delivered", "relayed", "expanded"}
# A complaint from the recipient; these three are about us, or take a complaint back.
NOT_THE_RECIPIENT_OBJECTING = {"auth-failure", "virus", "not-spam"}
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def norm(value: str | None) -> str:
    return (value or "").strip().lower()


def report_class(report: Report) -> str:
    """The requirement's class of a report (first match, as the issue lists them)."""
    if report.category is Category.COMPLAINT:
        return "complaint"
    if report.category is Category.AUTO_REPLY:
        return "auto_reply"
    if norm(report.action) == "delayed":
        return "delay"
    if norm(report.action) in DELIVERY_ACTIONS or report.category is Category.DELIVERED:
        return "delivery"
    if report.category is None:
        return "unread"
    if report.category in FAILURE_CATEGORIES and norm(report.action) in ("failed", ""):
        return "failure"
    return "none"


def combos(cls: str) -> Iterator[tuple[Status | None, Report, Effect]]:
    for current, report in product(STATUSES, REPORTS):
        if report_class(report) == cls:
            yield current, report, effect(current, report)


# --- reports ---------------------------------------------------------------------------------


def test_every_report_combination_falls_in_exactly_one_class() -> None:
    unplaced = [r for r in REPORTS if report_class(r) == "none"]
    assert unplaced == []


@pytest.mark.parametrize("current", STATUSES)
def test_every_report_is_recorded_as_a_report_event_with_its_kind(current: Status | None) -> None:
    for report in REPORTS:
        got = effect(current, report)
        assert (got.event, got.reason, got.category) == (
            EventType.REPORT,
            f"report_{report.kind}",
            report.category,
        ), report


def test_a_complaint_never_changes_the_status_and_goes_to_the_policy() -> None:
    seen = 0
    for current, report, got in combos("complaint"):
        seen += 1
        assert got.status is None, (current, report)
        assert not got.final_failure, (current, report)
        assert got.counts_as is None, (current, report)  # neither counts nor ends a streak
        assert got.decide, (current, report)  # abuse suppresses, auth-failure alerts
        objects = norm(report.feedback_type) not in NOT_THE_RECIPIENT_OBJECTING
        assert got.updates_row is objects, (current, report)
    assert seen == len(STATUSES) * len(KINDS) * len(FEEDBACK) * len(ACTIONS)


def test_an_auto_reply_changes_nothing_and_the_policy_never_sees_it() -> None:
    for current, report, got in combos("auto_reply"):
        assert got.status is None, (current, report)
        assert (got.counts_as, got.decide) == (None, False), (current, report)


def test_a_delay_notice_changes_nothing_and_the_policy_never_sees_it() -> None:
    seen = 0
    for current, report, got in combos("delay"):
        seen += 1
        assert got.status is None, (current, report)
        assert not got.updates_row, (current, report)
        assert (got.counts_as, got.decide) == (None, False), (current, report)
    assert seen > 0


def test_a_delivery_report_keeps_the_status_and_ends_a_failure_streak() -> None:
    for current, report, got in combos("delivery"):
        assert got.status is None, (current, report)
        assert not got.updates_row, (current, report)
        assert (got.counts_as, got.decide) == (Status.SENT, False), (current, report)


def test_a_report_nothing_could_be_read_from_changes_nothing() -> None:
    for current, report, got in combos("unread"):
        assert got.status is None, (current, report)
        assert not got.updates_row, (current, report)
        assert (got.counts_as, got.decide) == (None, False), (current, report)


def test_a_failure_report_bounces_the_recipient_and_counts_as_a_final_failure() -> None:
    for current, report, got in combos("failure"):
        assert got.final_failure, (current, report)
        assert (got.counts_as, got.decide) == (Status.BOUNCED, True), (current, report)
        if current is Status.BOUNCED:
            assert (got.status, got.updates_row) == (None, False), report  # bounced already
        else:
            assert (got.status, got.updates_row) == (Status.BOUNCED, True), (current, report)


def test_only_a_failure_report_ever_changes_a_recipient() -> None:
    for current, report in product(STATUSES, REPORTS):
        got = effect(current, report)
        if report_class(report) != "failure":
            assert got.status is None, (current, report)
            assert not got.final_failure, (current, report)


# The cases the issue names, one by one.


def test_a_complaint_on_a_delivered_recipient_keeps_it_sent() -> None:
    for feedback in ("abuse", "fraud", "opt-out"):
        got = effect(Status.SENT, Report("arf", Category.COMPLAINT, feedback))
        assert (got.status, got.final_failure, got.decide, got.updates_row) == (
            None,
            False,
            True,
            True,
        ), feedback
    for feedback in ("auth-failure", "not-spam"):
        got = effect(Status.SENT, Report("arf", Category.COMPLAINT, feedback))
        assert (got.status, got.final_failure, got.updates_row) == (None, False, False), feedback
        assert got.event is EventType.REPORT  # recorded all the same


def test_a_delay_notice_on_a_delivered_recipient_changes_nothing() -> None:
    got = effect(Status.SENT, Report("dsn", Category.MAILBOX_FULL, None, "delayed"))
    assert (got.event, got.status, got.updates_row, got.counts_as, got.decide) == (
        EventType.REPORT,
        None,
        False,
        None,
        False,
    )


def test_a_failed_dsn_on_a_delivered_recipient_is_a_later_bounce() -> None:
    got = effect(Status.SENT, Report("dsn", Category.NONEXISTENT_ADDRESS, None, "failed"))
    assert (got.status, got.final_failure, got.decide) == (Status.BOUNCED, True, True)


# --- attempts and cancellations ---------------------------------------------------------------


@pytest.mark.parametrize("current", STATUSES)
def test_an_attempt_decides_by_its_partition_whatever_the_status(current: Status | None) -> None:
    for attempt in ATTEMPTS:
        got = effect(current, attempt)
        category = attempt.category
        if attempt.result is Result.ACCEPTED:
            want = (EventType.SENT, "accepted", Category.DELIVERED, Status.SENT, Status.SENT, False)
        elif attempt.result is Result.BOUNCED:
            want = (EventType.BOUNCED, "permanent_failure", category, Status.BOUNCED,
                    Status.BOUNCED, True)  # fmt: skip
        elif attempt.expired:
            # RFC 5321 §4.5.4.1; an expiry nothing classified is a receiving problem.
            unread = category or Category.RECEIVING_PROBLEM
            want = (EventType.EXPIRED, "queue_lifetime_exceeded", unread, Status.EXPIRED,
                    Status.EXPIRED, True)  # fmt: skip
        else:
            # Deferrals never count (a greylisting server cannot get an address blocked).
            want = (EventType.DEFERRED, "transient_failure", category, Status.DEFERRED, None, False)
        assert (got.event, got.reason, got.category, got.status, got.counts_as, got.decide) == (
            want
        ), attempt
        assert got.updates_row, attempt


@pytest.mark.parametrize("current", STATUSES)
def test_a_suppression_cancels_a_waiting_recipient_with_its_reason(current: Status | None) -> None:
    for cause in CANCELLATIONS:
        got = effect(current, cause)
        assert (got.event, got.reason) == (EventType.SUPPRESSED, cause.reason.value)
        # Not a failure of the mailbox: the policy never counts it (no feedback loop).
        assert (got.counts_as, got.decide, got.final_failure) == (None, False, False)
        if current is None or current in PENDING:
            assert (got.status, got.updates_row) == (Status.SUPPRESSED, True), cause
        else:
            assert (got.status, got.updates_row) == (None, False), (current, cause)


# --- one truth: the events log reads back as the live decision -----------------------------------


def as_written(cause: Cause, got: Effect) -> Event:
    """The event row the writers make for ``cause`` (bounce sink, relay)."""
    details: dict[str, str] = {}
    if isinstance(cause, Report):
        details = {
            k: v for k, v in (("feedback_type", cause.feedback_type), ("action", cause.action)) if v
        }
    return Event(
        7, "t1", "ana@example.com", got.event, NOW, queue_id="q1", category=got.category,
        reason=got.reason, details=details,
    )  # fmt: skip


def test_an_event_row_reads_back_as_the_decision_that_wrote_it() -> None:
    for current, cause in product(STATUSES, CAUSES):
        live = effect(current, cause)
        read = effect_of_event(as_written(cause, live))
        assert read is not None, cause
        # What the row cannot know (the status before) changes nothing the readers use.
        same = ("event", "reason", "category", "counts_as", "decide")
        assert {k: getattr(read, k) for k in same} == {k: getattr(live, k) for k in same}, (
            current,
            cause,
        )
        if live.status is not None:
            assert read.status is live.status, (current, cause)


@pytest.mark.parametrize(
    "kind", [EventType.QUEUED, EventType.REJECTED, EventType.UNSUPPRESSED, EventType.HELD]
)
def test_rows_that_record_no_outcome_read_as_none(kind: EventType) -> None:
    assert effect_of_event(Event(None, "t1", "a@example.com", kind, NOW)) is None
    # An address's own suppression (no recipient) is not a cancellation either.
    address_level = Event(None, "t1", "a@example.com", EventType.SUPPRESSED, NOW, reason="manual")
    assert effect_of_event(address_level) is None


def test_webhooks_agree_with_the_decision() -> None:
    for cause in [*REPORTS, *ATTEMPTS, *CANCELLATIONS]:
        live = effect(Status.SENT if isinstance(cause, Report) else Status.QUEUED, cause)
        change = logged_change(as_written(cause, live), current=Status.SENT)
        kind = webhook_type(change)
        if isinstance(cause, Report):
            assert change.status is (live.status or Status.SENT), cause
            if cause.category is Category.COMPLAINT:
                assert kind == "complaint", cause
            else:
                assert (kind == "bounced") is live.final_failure, cause
                assert kind in ("bounced", "report"), cause
        else:
            assert change.status is live.status, cause
            assert kind == live.event.value, cause


def test_metrics_count_a_bounce_exactly_when_the_decision_is_a_bounce() -> None:
    metrics = Metrics()

    def bounces() -> float:
        return sum(
            sample.value
            for family in metrics.registry.collect()
            if family.name == "gateway_bounces"
            for sample in family.samples
            if sample.name == "gateway_bounces_total"
        )

    def sender_config() -> float:
        return sum(
            sample.value
            for family in metrics.registry.collect()
            if family.name == "gateway_sender_config_failures"
            for sample in family.samples
            if sample.name == "gateway_sender_config_failures_total"
        )

    causes = [r for r in REPORTS if r.kind == "dsn"] + ATTEMPTS + CANCELLATIONS
    for cause in causes:
        live = effect(Status.SENT, cause)
        before, alerts_before = bounces(), sender_config()
        metrics.publish(RecipientChanged(as_written(cause, live), live.status))
        counted = bounces() - before
        # An expiry is a final failure, counted as an expiry, not as a bounce.
        assert counted == (1 if live.counts_as is Status.BOUNCED else 0), cause
        auth_failure = (
            isinstance(cause, Report)
            and cause.category is Category.COMPLAINT
            and norm(cause.feedback_type) == "auth-failure"
        )
        if auth_failure:
            # The receiver says our SPF/DKIM/DMARC fails: an operator problem.
            assert sender_config() - alerts_before == 1, cause
