"""The auto-block policy reads its history as ``core.lifecycle.effect`` decided it (issue 13).

An earlier report counts towards the failure streak exactly when the decision calls it a
final failure; a complaint, a delay notice, an auto-reply, a delivery report or a report
nothing could be read from never does. Over a real SQLite store, through
``outcomes.PolicyApplier``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import product
from pathlib import Path

import pytest

from gateway.core.lifecycle import Attempt, Report, Result, effect
from gateway.core.model import Category, Event, Status
from gateway.core.policy import PolicySettings
from gateway.core.ports import SystemClock
from gateway.services.outcomes import PolicyApplier
from gateway.store.sqlite import SqliteStore
from tests.unit.test_lifecycle_effects import ACTIONS, CATEGORIES, FEEDBACK, NOW, as_written


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


STREAK = {Category.MAILBOX_DISABLED, Category.MAILBOX_FULL, Category.RECEIVING_PROBLEM}


async def test_the_policy_counts_an_earlier_report_only_when_it_was_a_final_failure(
    sqlite_store: SqliteStore,
) -> None:
    # Threshold 2: one earlier counted failure plus this bounce suppress; anything the
    # decision does not count as a final failure leaves the address alone.
    policy = PolicyApplier(
        sqlite_store, PolicySettings(failure_threshold=2, failure_window=timedelta(days=30)),
        SystemClock(),
    )  # fmt: skip
    earlier = NOW - timedelta(hours=1)
    history = [
        Report("dsn", category, feedback, action)
        for category, feedback, action in product(CATEGORIES, FEEDBACK, ACTIONS)
        if category is Category.COMPLAINT or feedback is None
    ]
    bounce = Attempt(Result.BOUNCED, Category.RECEIVING_PROBLEM)
    for n, cause in enumerate(history):
        address = f"r{n}@example.com"
        live = effect(Status.SENT, cause)
        row = as_written(cause, live)
        await sqlite_store.record_event(
            Event(n + 1, "t1", address, row.type, earlier, queue_id=f"q{n}",
                  category=row.category, reason=row.reason, details=row.details)
        )  # fmt: skip
        now_effect = effect(Status.QUEUED, bounce)
        now_event = Event(
            10_000 + n, "t1", address, now_effect.event, NOW, queue_id=f"q{n}b",
            category=now_effect.category, reason=now_effect.reason,
        )  # fmt: skip
        event_id = await sqlite_store.record_event(now_event)
        suppressed = await policy.after(now_event, now_effect, event_id=event_id)
        counts = live.final_failure and cause.category in STREAK
        assert (suppressed is not None) is counts, cause
