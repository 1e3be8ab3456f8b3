"""The PostgreSQL store beyond the shared contract: what only several nodes can show.

1. The shared contract (``test_store_contract.py``) runs on PostgreSQL through the
   ``backend`` fixture's ``postgres`` parameter (``tests/conftest.py``), not here.
2. Multi-node behaviour: two stores (two nodes) claiming at once get disjoint rows, leases
   of a dead node are taken over, a fenced node records nothing, a retried message
   enqueued on two nodes at once is queued once, migrations race safely.
3. ``NOTIFY gateway_queue`` wakes ``listen()`` on another node within a second.
4. A PostgreSQL restart: ``StoreUnavailable`` while it is down, then recovery, for the pool
   and for ``listen()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.core.errors import StoreError, StoreUnavailable
from gateway.core.model import Event, Status, Tenant
from gateway.core.records import OutboxItem
from gateway.store.postgres import PostgresStore, _migrations, _translate
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite import _migrations as sqlite_migrations
from tests.backends import PostgresBackend
from tests.contract.test_store_contract import LEASE, WINDOW, message, now_ms, sent
from tests.waiting import wait_until

WAIT = 5.0  # seconds: the bound on every wait in this module


@pytest.fixture
async def node_a(pg_backend: PostgresBackend) -> AsyncIterator[PostgresStore]:
    store = pg_backend.make()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def node_b(
    pg_backend: PostgresBackend, node_a: PostgresStore
) -> AsyncIterator[PostgresStore]:
    store = pg_backend.make()  # opened after node_a: the schema is already there
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = WAIT) -> Any:
    """Retry ``check`` until it returns without ``StoreUnavailable``; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


# --- (2) several nodes ---------------------------------------------------------------------------


async def test_migrations_from_several_nodes_at_once_apply_once(
    pg_backend: PostgresBackend,
) -> None:
    stores = [pg_backend.make() for _ in range(5)]
    try:
        async with asyncio.timeout(30):
            await asyncio.gather(*(s.open() for s in stores))
        # Each migration exactly once; as many as SQLite's, so both schemas are the same.
        versions = [(v,) for v, _ in _migrations()]
        assert versions == [(v,) for v, _ in sqlite_migrations()]
        assert pg_backend.rows("SELECT version FROM schema_version ORDER BY version") == versions
        await stores[0].ensure_tenant(Tenant("t1"))
        assert await stores[4].get_tenant("t1") == Tenant("t1")
    finally:
        for store in stores:
            await store.close()


async def test_two_nodes_claiming_at_once_get_disjoint_rows(
    node_a: PostgresStore, node_b: PostgresStore, pg_backend: PostgresBackend
) -> None:
    now = now_ms()
    for n in range(40):
        await node_a.enqueue(
            message(f"Q{n:02d}", (f"r{n}@example.com", f"s{n}@example.com"), received_at=now),
            WINDOW,
        )

    async def claimer(store: PostgresStore, owner: str) -> list[int]:
        got: list[int] = []
        while batch := await store.claim_due(now, 7, owner, LEASE):
            got += [d.recipient_id for d in batch]
        return got

    async with asyncio.timeout(30):
        a, b, a2, b2 = await asyncio.gather(
            claimer(node_a, "A"), claimer(node_b, "B"), claimer(node_a, "A"), claimer(node_b, "B")
        )

    claimed = a + b + a2 + b2
    assert len(claimed) == len(set(claimed)) == 80, "a row was leased twice"
    assert pg_backend.count("recipients", "lease_owner = 'A'") == len(a + a2)
    assert pg_backend.count("recipients", "lease_owner = 'B'") == len(b + b2)
    assert await node_a.claim_due(now, 100, "C", LEASE) == []


async def test_two_nodes_claiming_whole_messages_at_once_get_disjoint_rows(
    node_a: PostgresStore, node_b: PostgresStore
) -> None:
    now = now_ms()
    for n in range(30):
        rcpts = tuple(f"r{n}-{i}@example.com" for i in range(3))
        await node_a.enqueue(message(f"Q{n:02d}", rcpts, received_at=now), WINDOW)

    async def claimer(store: PostgresStore, owner: str) -> list[int]:
        got: list[int] = []
        while True:
            batch, contents = await store.claim_due_with_content(now, 4, owner, LEASE)
            if not batch:
                return got
            assert set(contents) == {d.queue_id for d in batch}
            got += [d.recipient_id for d in batch]

    async with asyncio.timeout(30):
        a, b, a2, b2 = await asyncio.gather(
            claimer(node_a, "A"), claimer(node_b, "B"), claimer(node_a, "A"), claimer(node_b, "B")
        )

    claimed = a + b + a2 + b2
    assert len(claimed) == len(set(claimed)) == 90, "a row was leased twice"


async def test_skip_locked_claims_do_not_wait_for_a_row_another_node_holds(
    node_a: PostgresStore, pg_backend: PostgresBackend
) -> None:
    now = now_ms()
    await node_a.enqueue(message("Q1", ("a@example.com",), received_at=now), WINDOW)
    await node_a.enqueue(message("Q2", ("b@example.com",), received_at=now), WINDOW)
    (held_id,) = (r.recipient_id for r in await node_a.recipients_of("Q1"))
    conn = pg_backend.server.side_connect(pg_backend.database)
    try:  # another node is in the middle of claiming a@ (its row lock is held)
        pg_backend.server.side_call(
            conn.execute(f"BEGIN; SELECT id FROM recipients WHERE id = {held_id} FOR UPDATE")
        )
        started = time.monotonic()
        claimed = await node_a.claim_due(now, 10, "A", LEASE)
        assert [d.address for d in claimed] == ["b@example.com"]
        assert time.monotonic() - started < 2
    finally:
        pg_backend.server.side_call(conn.close(timeout=10))
    assert [d.address for d in await node_a.claim_due(now, 10, "A", LEASE)] == ["a@example.com"]


async def test_a_dead_nodes_leases_are_taken_over_and_its_late_result_is_fenced(
    node_a: PostgresStore, node_b: PostgresStore
) -> None:
    now = now_ms()
    await node_a.enqueue(message("Q1", ("a@example.com",), received_at=now), WINDOW)
    (claim,) = await node_a.claim_due(now, 10, "node-a", LEASE)
    assert await node_b.claim_due(now + LEASE / 2, 10, "node-b", LEASE) == []

    (taken,) = await node_b.claim_due(now + LEASE, 10, "node-b", LEASE)

    assert taken.recipient_id == claim.recipient_id
    late = sent(claim.recipient_id, "a@example.com", now + LEASE, "Q1")
    assert await node_a.record_outcomes([late], "node-a") == {}
    (view,) = await node_b.recipients_of("Q1")
    assert view.status is Status.QUEUED
    recorded = await node_b.record_outcomes([late], "node-b")
    assert list(recorded) == [claim.recipient_id]


async def test_a_retried_message_enqueued_on_two_nodes_at_once_is_queued_once(
    node_a: PostgresStore, node_b: PostgresStore, pg_backend: PostgresBackend
) -> None:
    rcpts = ("a@example.com", "b@example.com")
    for attempt in range(10):
        mid = f"<retry-{attempt}@x>"
        first, second = await asyncio.gather(
            node_a.enqueue(message(f"QA{attempt}", rcpts, message_id=mid), WINDOW),
            node_b.enqueue(message(f"QB{attempt}", rcpts, message_id=mid), WINDOW),
        )
        assert sorted([first.queued, second.queued]) == [(), rcpts]
        assert sorted([first.duplicates, second.duplicates]) == [(), rcpts]
        assert first.queue_id == second.queue_id
    assert pg_backend.count("recipients") == 20


# --- (3) notifications ----------------------------------------------------------------------------


async def test_enqueue_on_one_node_wakes_listen_on_another_within_a_second(
    node_a: PostgresStore, node_b: PostgresStore, pg_backend: PostgresBackend
) -> None:
    woken = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        listener = group.create_task(node_b.listen(woken.set))
        await wait_until(pg_backend.listening, WAIT, what="LISTEN in place")
        assert not woken.is_set()
        for queue_id in ("Q1", "Q2"):
            started = time.monotonic()
            await node_a.enqueue(message(queue_id), WINDOW)
            async with asyncio.timeout(1):
                await woken.wait()
            assert time.monotonic() - started < 1
            woken.clear()
        # a transaction that rolls back (a taken queue id) notifies nobody
        with pytest.raises(StoreError):
            await node_a.enqueue(message("Q1", ("other@example.com",)), WINDOW)
        await asyncio.sleep(0.3)  # the behaviour under test: no NOTIFY comes (no event for that)
        assert not woken.is_set()
        listener.cancel()


async def test_listen_returns_when_its_store_closes(pg_backend: PostgresBackend) -> None:
    store = pg_backend.make()
    await store.open()
    async with asyncio.TaskGroup() as group:
        listener = group.create_task(store.listen(lambda: None))
        await wait_until(pg_backend.listening, WAIT, what="LISTEN in place")
        await store.close()
        async with asyncio.timeout(WAIT):
            await listener


# --- (4) PostgreSQL restarts ----------------------------------------------------------------------


async def test_while_postgresql_is_down_calls_fail_with_store_unavailable_then_recover(
    node_a: PostgresStore, pg_backend: PostgresBackend
) -> None:
    await node_a.enqueue(message("Q0"), WINDOW)
    server = pg_backend.server
    server.stop()
    try:
        for call in (
            lambda: node_a.enqueue(message("Q1"), WINDOW),
            node_a.ping,
            lambda: node_a.claim_due(now_ms(), 10, "A", LEASE),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                async with asyncio.timeout(15):
                    await call()
            assert time.monotonic() - started < 10
    finally:
        server.resume()

    result = await eventually(lambda: node_a.enqueue(message("Q1"), WINDOW), timeout=15)
    assert result.queued == ("alice@example.com",)
    assert pg_backend.count("messages") == 2
    await node_a.ping()


async def test_after_a_restart_the_pool_recovers(
    node_a: PostgresStore, pg_backend: PostgresBackend
) -> None:
    # fill the pool with connections that the restart will cut
    await asyncio.gather(*(node_a.enqueue(message(f"Q{n}"), WINDOW) for n in range(10)))
    pg_backend.server.restart()

    outcomes: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            async with asyncio.timeout(10):
                await node_a.ping()
        except StoreUnavailable:
            outcomes.append("unavailable")
            await asyncio.sleep(0.1)
        else:
            outcomes.append("ok")
            break
    assert outcomes[-1] == "ok", outcomes
    assert len(outcomes) <= 3, f"one failure per stale connection: {outcomes}"
    await node_a.enqueue(message("Q99"), WINDOW)
    assert pg_backend.count("messages") == 11


async def test_listen_reconnects_after_a_restart(
    node_a: PostgresStore, node_b: PostgresStore, pg_backend: PostgresBackend
) -> None:
    wakes = 0
    woken = asyncio.Event()

    def wake() -> None:
        nonlocal wakes
        wakes += 1
        woken.set()

    async with asyncio.TaskGroup() as group:
        listener = group.create_task(node_b.listen(wake))
        await wait_until(pg_backend.listening, WAIT, what="LISTEN in place")
        pg_backend.server.restart()
        async with asyncio.timeout(10):  # the catch-up wake after reconnecting
            await woken.wait()
        woken.clear()
        await eventually(lambda: node_a.enqueue(message("Q1"), WINDOW), timeout=15)
        async with asyncio.timeout(WAIT):
            await woken.wait()
        listener.cancel()
    assert wakes >= 2


# --- error translation and the rest -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "unavailable", "full"),
    [
        (asyncpg.exceptions.DiskFullError("could not extend file: No space left"), True, True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True, False),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting"), True, False),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), True, False),
        (asyncpg.exceptions.LockNotAvailableError("lock timeout"), True, False),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), True, False),
        (asyncpg.exceptions.QueryCanceledError("statement timeout"), True, False),
        (asyncpg.exceptions.TooManyConnectionsError("too many clients"), True, False),
        (ConnectionRefusedError(111, "Connection refused"), True, False),
        (TimeoutError(), True, False),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), False, False),
        (asyncpg.exceptions.UndefinedTableError("no such table"), False, False),
    ],
)
def test_errors_are_translated(error: BaseException, unavailable: bool, full: bool) -> None:
    translated = _translate(error)
    assert isinstance(translated, StoreError)
    assert isinstance(translated, StoreUnavailable) is unavailable
    assert getattr(translated, "full", False) is full


async def test_backup_is_refused_with_a_pointer_to_pg_dump(node_a: PostgresStore) -> None:
    with pytest.raises(StoreError, match="pg_dump"):
        await node_a.backup("/tmp/x")


async def test_durable_settings_hold_on_every_pooled_connection(
    node_a: PostgresStore, pg_backend: PostgresBackend
) -> None:
    await asyncio.gather(*(node_a.enqueue(message(f"Q{n}"), WINDOW) for n in range(20)))
    rows = pg_backend.rows(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gateway'"
        " AND datname = current_database()"
    )
    assert rows[0][0] >= 1
    pool = node_a._pool
    assert pool is not None
    async with pool.acquire() as conn:  # also after the pool's RESET ALL
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        assert await conn.fetchval("SHOW lock_timeout") == "5s"


async def test_tenant_updates_dkim_keys_and_message_views(node_a: PostgresStore) -> None:
    await node_a.ensure_tenant(Tenant("b"))
    await node_a.ensure_tenant(Tenant("a", ("a.example",)))
    await node_a.update_tenant(Tenant("a", ("a.example", "b.example"), 5, 50))
    assert await node_a.list_tenants() == [
        Tenant("a", ("a.example", "b.example"), 5, 50),
        Tenant("b"),
    ]
    await node_a.set_dkim_key("a", "a.example", "s1", "rsa-sha256", b"PEM1")
    await node_a.set_dkim_key("a", "a.example", "s2", "ed25519-sha256", b"PEM2")
    assert await node_a.dkim_keys() == [("a", "a.example", "s2", "ed25519-sha256", b"PEM2")]
    at = now_ms()
    await node_a.enqueue(message("Q1", ("x@example.com", "y@example.com"), received_at=at), WINDOW)
    events = await node_a.events_of_message("Q1")
    assert [e.address for e in events] == ["x@example.com", "y@example.com"]
    view = await node_a.recipient(events[0].recipient_id or 0)
    assert view is not None
    assert (view.address, view.due_at, view.status) == ("x@example.com", at, Status.QUEUED)
    assert await node_a.recipient(10**9) is None
    assert await node_a.load_content("Q1") == message("Q1").content
    assert await node_a.load_content("nope") is None
    assert datetime.now(UTC) - at < timedelta(minutes=1)


# --- (5) the same rows as SQLite, and the admin and outbox mixins on several nodes -------------


async def test_enqueue_writes_the_same_rows_and_events_as_sqlite(
    node_a: PostgresStore, tmp_path: Path
) -> None:
    """One statement on PostgreSQL, a loop on SQLite: the same results, rows and events."""
    lite = SqliteStore(tmp_path / "gateway.db")
    await lite.open()
    try:
        t0 = now_ms() - timedelta(hours=2)
        batches = [
            message("Q1", ("a@x.example", "b@x.example", "a@x.example"), message_id="<m@x>"),
            message("Q2", ("b@x.example", "c@x.example", "b@x.example"), message_id="<m@x>"),
            message("Q3", ("a@x.example",), message_id="<m@x>"),
            message("Q4", ("a@x.example", "d@x.example")),
            message("Q5", ("c@x.example",), message_id="<m@x>", tenant="t2"),
        ]
        for n, batch in enumerate(batches):
            msg = dataclasses.replace(batch, received_at=t0 + timedelta(minutes=n))
            assert await node_a.enqueue(msg, WINDOW) == await lite.enqueue(msg, WINDOW)

        def strip(events: list[Event]) -> list[Event]:
            return [dataclasses.replace(e, event_id=None, recipient_id=None) for e in events]

        for queue_id in ("Q1", "Q2", "Q3", "Q4", "Q5"):
            assert strip(await node_a.events_of_message(queue_id)) == strip(
                await lite.events_of_message(queue_id)
            )
            pg_rows = [
                dataclasses.replace(v, recipient_id=0) for v in await node_a.recipients_of(queue_id)
            ]
            lite_rows = [
                dataclasses.replace(v, recipient_id=0) for v in await lite.recipients_of(queue_id)
            ]
            assert pg_rows == lite_rows
        for address in ("a@x.example", "b@x.example", "c@x.example", "d@x.example"):
            assert strip(await node_a.events_for(address, None, 100)) == strip(
                await lite.events_for(address, None, 100)
            )
        assert await node_a.load_content("Q1") == await lite.load_content("Q1")
        assert await node_a.message("Q3") == await lite.message("Q3") is None
        assert await node_a.message("Q2") == await lite.message("Q2")
    finally:
        await lite.close()


async def test_two_nodes_claim_disjoint_webhooks_and_a_lapsed_lease_comes_back(
    node_a: PostgresStore, node_b: PostgresStore
) -> None:
    now = now_ms()
    await node_a.set_webhook("t1", "https://hooks.example/t1", "s3cret")
    items = [OutboxItem(f"w{i:03d}", "t1", "sent", b"{}", now) for i in range(40)]
    await node_a.enqueue_webhooks(items)
    await node_b.enqueue_webhooks(items[:5])  # ids already there are kept, not doubled

    got_a, got_b = await asyncio.gather(
        node_a.claim_webhooks(now, 30, LEASE), node_b.claim_webhooks(now, 30, LEASE)
    )

    ids_a, ids_b = {c.id for c in got_a}, {c.id for c in got_b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {i.id for i in items}
    assert {(c.url, c.secret) for c in got_a + got_b} == {("https://hooks.example/t1", "s3cret")}
    assert await node_a.claim_webhooks(now, 100, LEASE) == []
    # node b dies: its rows come back once the lease has run out, to any node
    back = await node_a.claim_webhooks(now + LEASE, 100, LEASE)
    assert {c.id for c in back} == ids_a | ids_b
    assert [c.id for c in back] == sorted(c.id for c in back)  # oldest due first, then id
    assert await node_a.webhook_backlog() == (40, now)
