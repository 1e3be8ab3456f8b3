"""Issue 13, item 4, the last two gaps, on every backend: a bounce notice commits with the
outcomes that cause it (``Outcome.notice``), and an enqueue with its admin audit entry
(``enqueue(..., audit=...)``, the admin API's send-test) is one transaction.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gateway.core.errors import StoreError
from gateway.core.model import Category, EventType, NewMessage, Status
from gateway.core.ports import Outcome
from gateway.core.records import AuditEntry
from tests.contract.test_store_contract import (
    LEASE,
    WINDOW,
    attempt_event,
    ids_of,
    message,
    now_ms,
)

if TYPE_CHECKING:
    from datetime import datetime

    from gateway.core.ports import Store
    from tests.backends import Backend


def notice(queue_id: str, at: datetime) -> NewMessage:
    return NewMessage(
        queue_id=queue_id,
        tenant="t1",
        mail_from="",
        recipients=("app@sender.example",),
        content=b"Subject: Undelivered Mail Returned to Sender\r\n\r\nSorry.\r\n",
        message_id=None,
        subject="Undelivered Mail Returned to Sender",
        received_at=at,
    )


def bounced(recipient_id: int, address: str, at: datetime, note: NewMessage | None) -> Outcome:
    event = attempt_event(
        recipient_id,
        address,
        EventType.BOUNCED,
        at,
        queue_id="Q1",
        code=550,
        enhanced="5.1.1",
        text="no such user",
        category=Category.NONEXISTENT_ADDRESS,
    )
    return Outcome(
        recipient_id, Status.BOUNCED, event, category=Category.NONEXISTENT_ADDRESS, notice=note
    )


async def test_record_outcomes_queues_the_notice_once_with_the_outcomes(
    store: Store, backend: Backend
) -> None:
    await store.enqueue(message("Q1", ("a@example.com", "b@example.com", "c@example.com")), WINDOW)
    ids = await ids_of(store, "Q1")
    now = now_ms()
    assert len(await store.claim_due(now, 10, "A", LEASE)) == 3
    note = notice("N1", now)

    # A fenced owner's outcomes queue no notice.
    assert (
        await store.record_outcomes(
            [bounced(ids["a@example.com"], "a@example.com", now, note)], "Z"
        )
        == {}
    )
    assert backend.count("messages", "queue_id = 'N1'") == 0

    # One notice for the two failures that carry it, queued with them.
    recorded = await store.record_outcomes(
        [
            bounced(ids["a@example.com"], "a@example.com", now, note),
            bounced(ids["b@example.com"], "b@example.com", now, note),
        ],
        "A",
    )
    assert set(recorded) == {ids["a@example.com"], ids["b@example.com"]}
    assert backend.rows("SELECT mail_from, subject FROM messages WHERE queue_id = 'N1'") == [
        ("", "Undelivered Mail Returned to Sender")
    ]
    assert backend.rows("SELECT address, status FROM recipients WHERE queue_id = 'N1'") == [
        ("app@sender.example", "queued")
    ]
    assert backend.count("events", "queue_id = 'N1' AND type = 'queued'") == 1
    assert await store.load_content("N1") == note.content


async def test_a_notice_the_store_refuses_undoes_the_outcomes_with_it(
    store: Store, backend: Backend
) -> None:
    await store.enqueue(message("Q1", ("a@example.com",)), WINDOW)
    ids = await ids_of(store, "Q1")
    now = now_ms()
    assert len(await store.claim_due(now, 10, "A", LEASE)) == 1
    # A notice under a queue id already taken cannot be written: neither may stay.
    clash = replace(notice("Q1", now), recipients=("app@sender.example",))

    with pytest.raises(StoreError):
        await store.record_outcomes(
            [bounced(ids["a@example.com"], "a@example.com", now, clash)], "A"
        )

    assert backend.count("events", "type = 'bounced'") == 0
    assert {v.status for v in await store.recipients_of("Q1")} == {Status.QUEUED}


async def test_an_enqueue_and_its_audit_entry_commit_together_or_not_at_all(
    store: Store, backend: Backend
) -> None:
    enqueue = store.enqueue

    def broken(result: Any) -> AuditEntry:
        return AuditEntry(now_ms(), "ops", "send_test", result.queue_id, {"bad": object()})

    with pytest.raises((TypeError, StoreError)):
        await enqueue(message("Q1", ("x@example.com",)), timedelta(0), audit=broken)
    assert backend.count("messages") == 0
    assert backend.count("admin_audit") == 0

    def entry(result: Any) -> AuditEntry:
        return AuditEntry(now_ms(), "ops", "send_test", result.queue_id, {"to": "x@example.com"})

    result = await enqueue(message("Q2", ("x@example.com",)), timedelta(0), audit=entry)

    assert result.queued == ("x@example.com",)
    assert backend.rows("SELECT queue_id FROM messages") == [("Q2",)]
    assert backend.rows("SELECT actor, action, target FROM admin_audit") == [
        ("ops", "send_test", "Q2")
    ]
    # With a Message-ID (the lock against a concurrent retry on PostgreSQL) as well.
    await enqueue(
        message("Q3", ("y@example.com",), message_id="<m3@sender.example>"), WINDOW, audit=entry
    )
    assert backend.count("admin_audit", "target = 'Q3'") == 1
