"""Feedback-loop reports and the quota gauges on every backend (issue 16 items 6 and 8).

Unattributed reports (migration 013) are stored, listed newest first with a page bound, and
purged by age and beyond ``MAX_KEPT``; a message is found by its Message-ID alone, whatever
its tenant; ``quota_use`` reads what each tenant with a quota used of it, as the intake's
hold counts it.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING

from gateway.core import feedback
from gateway.core.feedback import UnattributedReport, Why
from gateway.core.model import Tenant
from gateway.core.records import QuotaUse, TenantSettings
from tests.contract.test_quota_holds import DAY, HOUR, hold
from tests.contract.test_store_contract import WINDOW, message, now_ms

if TYPE_CHECKING:
    import pytest

    from gateway.core.ports import Store
    from tests.backends import Backend


def report(at_offset: timedelta = timedelta(0), why: Why = Why.NO_MATCH) -> UnattributedReport:
    return UnattributedReport(
        id=None,
        received_at=now_ms() + at_offset,
        feedback_type="abuse",
        reporter="Yahoo!-Mail-Feedback/2.0",
        source_ip="192.0.2.7",
        original_mail_from="someone@elsewhere.example",
        original_rcpt_to="ana@yahoo.com",
        original_message_id="<nope@elsewhere.example>",
        arrival_date="Thu, 8 Mar 2024 14:00:00 -0800",
        why=why,
        size=2048 + len("x" * 10),
    )


async def test_reports_are_stored_and_listed_newest_first_in_pages(store: Store) -> None:
    first = await store.add_feedback_report(report(-timedelta(minutes=2)))
    second = await store.add_feedback_report(report(-timedelta(minutes=1), Why.BAD_TOKEN))
    third = await store.add_feedback_report(
        dataclasses.replace(report(), reporter="r" * 900, why=Why.NOT_A_REPORT)
    )
    assert first < second < third

    page = await store.feedback_reports(2)
    assert [r.id for r in page] == [third, second]
    assert page[0].why is Why.NOT_A_REPORT
    assert len(page[0].reporter) == feedback.MAX_FIELD  # remote text is bounded
    assert page[1].why is Why.BAD_TOKEN
    assert page[1].original_rcpt_to == "ana@yahoo.com"
    assert page[1].source_ip == "192.0.2.7"
    rest = await store.feedback_reports(2, before_id=second)
    assert [r.id for r in rest] == [first]
    assert rest[0].received_at.tzinfo is not None


async def test_purge_deletes_by_age_and_keeps_at_most_the_newest(
    store: Store, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.add_feedback_report(report(-timedelta(days=40)))
    kept = [await store.add_feedback_report(report()) for _ in range(5)]
    assert await store.purge_feedback_reports(now_ms() - feedback.KEEP) == 1
    assert backend.count("feedback_reports") == 5
    monkeypatch.setattr("gateway.store.feedback_queries.MAX_KEPT", 3)
    assert await store.purge_feedback_reports(now_ms() - feedback.KEEP) == 2
    assert [r.id for r in await store.feedback_reports(10)] == kept[:1:-1]
    assert await store.purge_feedback_reports(now_ms() - feedback.KEEP) == 0


async def test_messages_are_found_by_message_id_across_tenants(store: Store) -> None:
    now = now_ms()
    await store.enqueue(
        message("Q1", tenant="t1", message_id="<m1@a.example>", received_at=now), WINDOW
    )
    await store.enqueue(
        message(
            "Q2",
            tenant="t2",
            message_id="<m1@a.example>",
            received_at=now + timedelta(seconds=1),
        ),
        WINDOW,
    )
    await store.enqueue(message("Q3", message_id="<other@a.example>", received_at=now), WINDOW)
    assert await store.queue_ids_by_message_id("<m1@a.example>") == ["Q2", "Q1"]
    assert await store.queue_ids_by_message_id("<unknown@a.example>") == []


async def test_quota_use_reads_each_window_of_each_tenant_with_a_quota(store: Store) -> None:
    now = now_ms()
    await store.create_tenant(TenantSettings(Tenant("q1", hourly_quota=10, daily_quota=40)), now)
    await store.create_tenant(TenantSettings(Tenant("q2", daily_quota=4)), now)
    await store.create_tenant(TenantSettings(Tenant("free")), now)
    limits = [(10, HOUR), (40, DAY)]
    for i in range(8):
        assert await hold(store, f"h{i}", f"r{i}@example.com", limits, now, tenant="q1") is None
    assert await hold(store, "g", "x@example.com", [(4, DAY)], now, tenant="q2") is None

    uses = await store.quota_use(now)
    assert uses == [
        QuotaUse("q1", "hourly", 8, 10),
        QuotaUse("q1", "daily", 8, 40),
        QuotaUse("q2", "daily", 1, 4),
    ]
    assert uses[0].ratio == 0.8
    # Two hours on, the hourly window is empty and the daily one still counts them.
    later = await store.quota_use(now + 2 * HOUR)
    assert QuotaUse("q1", "hourly", 0, 10) in later
    assert QuotaUse("q1", "daily", 8, 40) in later


async def test_an_erasure_deletes_the_reports_that_name_the_address(store: Store) -> None:
    kept = await store.add_feedback_report(
        dataclasses.replace(report(), original_rcpt_to="axb@example.com, bob@example.com")
    )
    await store.add_feedback_report(
        dataclasses.replace(report(), original_rcpt_to="bob@example.com, a_b@example.com")
    )
    await store.add_feedback_report(
        dataclasses.replace(report(), original_rcpt_to="", original_mail_from="a_b@example.com")
    )
    await store.erase_address("a_b@example.com", now_ms())
    # "_" is not a wildcard: axb@ stays, and so does the report that names only others.
    assert [r.id for r in await store.feedback_reports(10)] == [kept]
