"""The webhook outbox fed from the events log: crash-safe, at least once, no duplicates.

The store-backed tests here run on SQLite and on PostgreSQL (the ``store`` fixture is
parametrised over both backends, ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from gateway.core.errors import StoreError
from gateway.core.model import (
    Category,
    Event,
    EventType,
    Reason,
    Status,
    SuppressionReason,
    Tenant,
)
from gateway.core.records import EventBatch, OutboxItem
from gateway.observe.events import ObservedStore
from gateway.observe.webhooks import ALL_TYPES, WebhookOutbox, logged_change, webhook_id
from gateway.services.tenants import TenantDirectory
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from tests.observability.samples import T0, TENANT, message, outcome
from tests.waiting import wait_until

Store = SqliteStore | PostgresStore
LEASE = timedelta(minutes=5)
URL = "https://hooks.example.com/acme"


async def write_events(store: Any, queue_id: str = "q1", count: int = 3) -> list[int]:
    """Queue ``count`` recipients and record an outcome for each, straight on ``store``
    (no outbox running); the outcome events' ids."""
    addresses = [f"r{n}@gmail.com" for n in range(count)]
    await store.enqueue(message(queue_id, *addresses), timedelta(hours=1))
    claimed = await store.claim_due(T0 + timedelta(hours=1), 100, "node-1", LEASE)
    mine = [d for d in claimed if d.queue_id == queue_id]
    recorded: dict[int, int] = await store.record_outcomes(
        [outcome(d.recipient_id, d.address, EventType.SENT, T0, queue_id=queue_id) for d in mine],
        "node-1",
    )
    return sorted(recorded.values())


async def drain(outbox: WebhookOutbox) -> None:
    """What a writer does at start: read the log to its end."""
    async with asyncio.timeout(10):
        while await outbox.collect():
            pass


async def outbox_rows(store: Store) -> list[dict[str, Any]]:
    records = await store.webhook_deliveries(None, None, 10_000)
    return [json.loads(r.body) | {"_row_id": r.id, "_type": r.type} for r in records]


def sent_event_ids(rows: Sequence[dict[str, Any]]) -> list[int]:
    return sorted(r["event_id"] for r in rows if r["type"] == "sent")


async def test_events_committed_without_a_writer_are_sent_after_a_restart(
    store: Store,
) -> None:
    await store.set_webhook(TENANT, URL, "s3cret")
    # The "previous process" committed these and died before any outbox row was written.
    event_ids = await write_events(store)
    await store.record_event(
        Event(None, TENANT, "x@gmail.com", EventType.SUPPRESSED, T0,
              reason=SuppressionReason.OPT_OUT)
    )  # fmt: skip
    assert await outbox_rows(store) == []

    woken: list[int] = []
    await drain(WebhookOutbox(store, wake=lambda: woken.append(1)))  # the new process

    rows = await outbox_rows(store)
    assert sent_event_ids(rows) == event_ids
    assert sorted(r["type"] for r in rows) == ["opt_out", "sent", "sent", "sent"]
    sent = next(r for r in rows if r["type"] == "sent")
    assert (sent["status"], sent["queue_id"]) == ("sent", "q1")
    assert sent["message_id"] == "<q1@acme.example>"
    assert sent["remote_host"] == "gmail-smtp-in.l.google.com"
    assert sent["at"] == T0.isoformat()
    # The webhook id is derived from the event id; the row id is the payload id.
    batch = await store.webhook_events(1)
    assert {r["id"] for r in rows} == {r["_row_id"] for r in rows}
    assert {r["id"] for r in rows if r["type"] == "sent"} == {
        webhook_id(batch.salt, n) for n in event_ids
    }
    assert woken
    # Nothing left: another start writes nothing more.
    await drain(WebhookOutbox(store))
    assert len(await outbox_rows(store)) == 4


async def test_running_writer_picks_up_events_it_was_not_told_about(store: Store) -> None:
    """Events committed by another node (or bypassing ``ObservedStore``) come by the poll."""
    await store.set_webhook(TENANT, URL, "s3cret")
    outbox = WebhookOutbox(store, poll_interval=timedelta(milliseconds=50))
    stopping = asyncio.Event()
    async with asyncio.timeout(10), asyncio.TaskGroup() as tasks:
        tasks.create_task(outbox.run(stopping))
        event_ids = await write_events(store)

        async def all_in_the_outbox() -> bool:
            return len(await outbox_rows(store)) >= len(event_ids)

        await wait_until(all_in_the_outbox, what="every event in the outbox")
        stopping.set()
    assert sent_event_ids(await outbox_rows(store)) == event_ids


class CrashingStore:
    """The store, except that the outbox commit dies (a kill -9 before it commits)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.built: list[OutboxItem] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def commit_webhooks(
        self, cursor: tuple[int, int], next: tuple[int, int], items: Sequence[OutboxItem]
    ) -> bool:
        self.built.extend(items)
        raise StoreError("the process died here")


async def test_a_crash_before_the_outbox_commit_loses_nothing(store: Store) -> None:
    await store.set_webhook(TENANT, URL, "s3cret")
    event_ids = await write_events(store)
    crashing = CrashingStore(store)
    with pytest.raises(StoreError):
        await WebhookOutbox(crashing).collect()  # type: ignore[arg-type]
    assert crashing.built  # the payloads were built, then lost with the process
    assert await outbox_rows(store) == []

    await drain(WebhookOutbox(store))
    rows = await outbox_rows(store)
    assert sent_event_ids(rows) == event_ids
    # The same ids as the first attempt made: a receiver would see the same event ids.
    assert {r["id"] for r in rows} == {i.id for i in crashing.built}


async def test_a_stale_batch_writes_nothing(store: Store) -> None:
    """A writer whose batch was taken by another one (cursor moved) writes no duplicate."""
    await store.set_webhook(TENANT, URL, "s3cret")
    await write_events(store)
    stale: EventBatch = await store.webhook_events(500)
    await drain(WebhookOutbox(store))
    item = OutboxItem("other-id", TENANT, "sent", b"{}", T0)
    assert not await store.commit_webhooks(stale.cursor, stale.next, [item])
    rows = await outbox_rows(store)
    assert len(rows) == 3
    assert "other-id" not in {r["_row_id"] for r in rows}


async def test_batches_are_bounded_and_each_event_is_written_once(store: Store) -> None:
    await store.set_webhook(TENANT, URL, "s3cret")
    event_ids = await write_events(store, count=25)
    outbox = WebhookOutbox(store, types=ALL_TYPES, batch=7)
    passes = 0
    while await outbox.collect():
        passes += 1
    # 25 queued + 25 sent events, 7 at a time: 7 full batches, then 1 of 1.
    assert passes == 7
    rows = await outbox_rows(store)
    assert sent_event_ids(rows) == event_ids
    assert sorted(r["type"] for r in rows) == ["queued"] * 25 + ["sent"] * 25
    assert len({r["event_id"] for r in rows}) == len(rows) == 50


async def test_tenants_without_endpoint_and_unwanted_types_are_passed_over(
    store: Store,
) -> None:
    await write_events(store)  # no endpoint yet: these are not for anyone
    outbox = WebhookOutbox(store, tenant_cache=timedelta(0))
    await drain(outbox)
    assert await outbox_rows(store) == []
    await store.set_webhook(TENANT, URL, "s3cret")
    event_ids = await write_events(store, "q2")  # queued (off by default) and sent
    await drain(outbox)
    rows = await outbox_rows(store)
    assert sent_event_ids(rows) == event_ids
    assert {r["type"] for r in rows} == {"sent"}


async def test_other_tenants_events_do_not_cut_a_pass_short(store: Store) -> None:
    """A batch read full of other tenants' events is still a full batch: read on at once."""
    await write_events(store, "q1", count=10)  # 20 events of TENANT, no endpoint yet
    await store.set_webhook("other", URL, "s3cret")  # an endpoint, for someone else
    await store.set_webhook(TENANT + "-later", URL, "s3cret")
    outbox = WebhookOutbox(store, batch=5)
    passes = 0
    while await outbox.collect():
        passes += 1
    assert passes == 4  # 20 events, 5 at a time, none of them wanted
    cursor = await store.webhook_events(100)
    assert cursor.rows == 0  # the cursor is at the end


async def test_with_no_endpoint_a_backlog_is_passed_in_few_commits(store: Store) -> None:
    await write_events(store, "q1", count=30)  # 60 events, nobody has an endpoint
    outbox = WebhookOutbox(store, batch=2)
    assert await outbox.collect() is False  # ids only, 200 at a time: one pass, at the end
    assert (await store.webhook_events(100)).rows == 0
    assert await outbox_rows(store) == []


async def test_the_log_read_decodes_only_the_tenants_asked_for(store: Store) -> None:
    await write_events(store)  # 3 queued + 3 sent events of TENANT
    everything = await store.webhook_events(100)
    nobody = await store.webhook_events(100, frozenset())
    others = await store.webhook_events(100, frozenset({"someone-else"}))
    mine = await store.webhook_events(100, frozenset({TENANT}))
    assert len(everything.events) == len(mine.events) == 6
    assert nobody.events == others.events == []
    # Skipped events still move the cursor past them.
    assert everything.next == nobody.next == others.next == mine.next != everything.cursor


async def test_events_after_deleted_ones_are_not_skipped(store: Store) -> None:
    """SQLite hands the ids of deleted newest events out again; the cursor follows."""
    await store.set_webhook(TENANT, URL, "s3cret")
    outbox = WebhookOutbox(store)
    await write_events(store)
    await drain(outbox)
    assert await store.purge_events(T0 + timedelta(days=1), 10_000) == 6
    await drain(outbox)  # moves the cursor back to the highest id left (none)
    await store.record_event(
        Event(None, TENANT, "y@gmail.com", EventType.REJECTED, T0, reason=Reason.INVALID)
    )
    await drain(outbox)
    rows = await outbox_rows(store)
    assert sorted(r["type"] for r in rows) == ["rejected", "sent", "sent", "sent"]


async def test_two_writers_on_one_store_write_each_event_once(store: Store) -> None:
    await store.set_webhook(TENANT, URL, "s3cret")
    async with second_node(store) as other:
        observed = ObservedStore(store)
        outboxes = [
            WebhookOutbox(node, types=ALL_TYPES, batch=5, poll_interval=timedelta(milliseconds=5))
            for node in (store, other)
        ]
        for outbox in outboxes:
            observed.add_sink(outbox)
        stopping = asyncio.Event()
        expected = 0
        async with asyncio.timeout(30), asyncio.TaskGroup() as tasks:
            for outbox in outboxes:
                tasks.create_task(outbox.run(stopping))
            for n in range(8):  # queued + sent for 4 recipients each, on both nodes
                await write_events(observed if n % 2 else other, f"q{n}", count=4)
                expected += 8

            async def all_in_the_outbox() -> bool:
                return len(await outbox_rows(store)) >= expected

            await wait_until(all_in_the_outbox, what="every event in the outbox")
            await asyncio.sleep(0.1)  # nothing more may come
            stopping.set()
    rows = await outbox_rows(store)
    assert len(rows) == expected
    assert len({r["event_id"] for r in rows}) == expected


@asynccontextmanager
async def second_node(store: Store) -> AsyncIterator[Store]:
    """Another store on the same database, as a second node (PostgreSQL) or process would
    open it."""
    other: Store = (
        PostgresStore(store.url) if isinstance(store, PostgresStore) else SqliteStore(store.path)
    )
    await other.open()
    try:
        yield other
    finally:
        await other.close()


async def test_postgres_event_committed_late_with_a_lower_id_is_not_skipped(
    store: Store,
) -> None:
    """Identity values are taken at insert: an event of a long transaction commits after
    events with higher ids; the outbox waits for it instead of passing over it."""
    if not isinstance(store, PostgresStore):
        pytest.skip("PostgreSQL only: SQLite hands out ids in commit order")
    await store.set_webhook(TENANT, URL, "s3cret")
    outbox = WebhookOutbox(store)
    conn = await asyncpg.connect(store.url)
    try:
        slow = conn.transaction()
        await slow.start()
        late_id = await conn.fetchval(
            "INSERT INTO events (tenant, address, type, at, reason) VALUES"
            " ($1, 'late@gmail.com', 'rejected', $2, 'no_such_domain') RETURNING id",
            TENANT,
            T0.timestamp(),
        )
        early_id = await store.record_event(
            Event(None, TENANT, "early@gmail.com", EventType.REJECTED, T0, reason=Reason.INVALID)
        )
        assert early_id > late_id
        await drain(outbox)
        assert await outbox_rows(store) == []  # waits behind the open transaction
        await slow.commit()
    finally:
        await conn.close()
    await drain(outbox)
    rows = await outbox_rows(store)
    assert sorted(r["event_id"] for r in rows) == [late_id, early_id]


# --- the payload from an event row -------------------------------------------------------------


def test_status_from_the_event_row() -> None:
    def change(kind: EventType, **kw: Any) -> Status | None:
        event = Event(1, TENANT, "a@gmail.com", kind, T0, **kw)
        return logged_change(event, Status.SENT).status

    assert change(EventType.SENT) is Status.SENT
    assert change(EventType.DEFERRED) is Status.DEFERRED
    assert change(EventType.EXPIRED) is Status.EXPIRED
    assert change(EventType.HELD) is Status.HELD
    assert change(EventType.RELEASED) is None
    assert change(EventType.UNSUPPRESSED) is None
    assert change(EventType.REPORT, category=Category.NONEXISTENT_ADDRESS) is Status.BOUNCED
    # A delay notice, an auto-reply: the recipient's status as it is.
    assert (
        change(
            EventType.REPORT,
            category=Category.MAILBOX_FULL,
            details={"action": "delayed"},
        )
        is Status.SENT
    )
    assert change(EventType.REPORT, category=Category.AUTO_REPLY) is Status.SENT
    # A complaint about a delivered message: it stays delivered (issue 13).
    complaint = {"feedback_type": "abuse"}
    assert change(EventType.REPORT, category=Category.COMPLAINT, details=complaint) is Status.SENT
    # A recipient not sent because its address was suppressed since it was queued.
    assert change(EventType.SUPPRESSED, reason="manual") is Status.SUPPRESSED


def test_webhook_ids_are_stable_and_salted() -> None:
    assert webhook_id("a", 42) == webhook_id("a", 42)
    assert webhook_id("a", 42) != webhook_id("b", 42)
    assert webhook_id("a", 42) != webhook_id("a", 43)
    assert len(webhook_id("a", 42)) == 32


async def test_the_outbox_takes_the_tenants_with_an_endpoint_from_the_tenant_directory(
    store: Store,
) -> None:
    """One view of the tenants (issue 13): an endpoint set on any node is used once the
    directory sees it (its expiry, here a fake clock moved past it), not after a cache of
    the outbox's own."""
    now = [0.0]
    directory = TenantDirectory(store, expiry=1.0, monotonic=lambda: now[0])
    outbox = WebhookOutbox(store, endpoints=directory.endpoint_tenants)
    await write_events(store)
    await drain(outbox)
    assert await outbox_rows(store) == []
    await store.ensure_tenant(Tenant(TENANT))
    # As another node's admin API does (PATCH /api/v1/tenants/{name}).
    await store.update_tenant_settings(TENANT, {"webhook_url": URL, "webhook_secret": "s3"})
    earlier = await write_events(store, "q2")
    await drain(outbox)
    assert await outbox_rows(store) == []  # the snapshot is younger than its expiry
    now[0] += 1.5
    later = await write_events(store, "q3")
    await drain(outbox)
    assert sent_event_ids(await outbox_rows(store)) == later
    assert not set(earlier) & set(sent_event_ids(await outbox_rows(store)))
    # An endpoint set with the store's set_webhook moves the directory's counter as well.
    await store.set_webhook("other", URL, "s3")
    now[0] += 1.5
    assert await directory.endpoint_tenants() == {TENANT, "other"}
