"""The ``Store`` port's contract, run against every backend in ``tests.backends.BACKENDS``.

Times are based on the wall clock (``release_claims`` has no ``now`` argument and uses it),
truncated to milliseconds so they survive any backend's timestamp type exactly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gateway.core.errors import StoreError, StoreUnavailable
from gateway.core.model import (
    Category,
    Event,
    EventType,
    NewMessage,
    Reason,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.ports import Outcome, RecipientView, Store
from gateway.core.records import AuditEntry, TenantSettings
from gateway.core.streams import Stream
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.backends import Backend

WINDOW = timedelta(hours=24)
LEASE = timedelta(seconds=60)

T = Stream.TRANSACTIONAL  # the stream the suppression look-ups ask for (issue 15)


def now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def message(
    queue_id: str,
    recipients: tuple[str, ...] = ("alice@example.com",),
    *,
    tenant: str = "t1",
    message_id: str | None = None,
    received_at: datetime | None = None,
    content: bytes | None = None,
    subject: str = "Invoice 42",
    mail_from: str = "app@sender.example",
) -> NewMessage:
    return NewMessage(
        queue_id=queue_id,
        tenant=tenant,
        mail_from=mail_from,
        recipients=recipients,
        content=content if content is not None else f"Subject: {subject}\r\n\r\nHi.\r\n".encode(),
        message_id=message_id,
        subject=subject,
        # A second before now by default: a test takes `now` first, then builds its messages,
        # and claims "what is due at now"; a message stamped a millisecond after that `now`
        # would not be due yet (seen once in CI: claim_due(now) found 0 of 2).
        received_at=received_at or now_ms() - timedelta(seconds=1),
        client_address="127.0.0.1",
    )


def attempt_event(
    recipient_id: int | None,
    address: str,
    type_: EventType,
    at: datetime,
    *,
    tenant: str = "t1",
    queue_id: str | None = None,
    code: int | None = 250,
    enhanced: str | None = "2.0.0",
    text: str = "OK",
    category: Category | None = None,
) -> Event:
    return Event(
        recipient_id,
        tenant,
        address,
        type_,
        at,
        queue_id=queue_id,
        category=category,
        reply_code=code,
        enhanced=enhanced,
        text=text,
        remote_host="mx.example.com",
    )


def sent(recipient_id: int, address: str, at: datetime, queue_id: str) -> Outcome:
    return Outcome(
        recipient_id,
        Status.SENT,
        attempt_event(recipient_id, address, EventType.SENT, at, queue_id=queue_id),
        category=Category.DELIVERED,
    )


def deferred(
    recipient_id: int, address: str, at: datetime, due: datetime, queue_id: str
) -> Outcome:
    return Outcome(
        recipient_id,
        Status.DEFERRED,
        attempt_event(
            recipient_id,
            address,
            EventType.DEFERRED,
            at,
            queue_id=queue_id,
            code=451,
            enhanced="4.3.0",
            text="try later",
        ),
        due_at=due,
        category=Category.RECEIVING_PROBLEM,
    )


async def ids_of(store: Store, queue_id: str) -> dict[str, int]:
    return {r.address: r.recipient_id for r in await store.recipients_of(queue_id)}


# --- lifecycle and migrations ---------------------------------------------------------------------


async def test_migrations_are_idempotent_when_opened_again(backend: Backend) -> None:
    first = backend.make()
    await first.open()
    await first.ensure_tenant(Tenant("t1", ("example.com",)))
    await first.enqueue(message("Q1"), WINDOW)
    await first.close()
    versions = backend.rows("SELECT version FROM schema_version ORDER BY version")

    for _ in range(2):
        again = backend.make()
        await again.open()
        try:
            await again.ping()
            assert await again.get_tenant("t1") == Tenant("t1", ("example.com",))
            assert [r.address for r in await again.recipients_of("Q1")] == ["alice@example.com"]
        finally:
            await again.close()
    assert backend.rows("SELECT version FROM schema_version ORDER BY version") == versions
    assert len(versions) == len({v for (v,) in versions}) >= 1


async def test_a_closed_store_refuses_work_with_store_unavailable(backend: Backend) -> None:
    closed = backend.make()
    await closed.open()
    await closed.close()
    with pytest.raises(StoreUnavailable):
        await closed.enqueue(message("Q1"), WINDOW)
    with pytest.raises(StoreUnavailable):
        await closed.ping()


async def test_a_failed_open_raises_store_error_and_leaves_nothing_running(
    backend: Backend,
) -> None:
    # The threads alive before, by identity: a thread of an earlier test that ends meanwhile
    # must not hide one that open() started (a bare count would net the two out).
    before = set(threading.enumerate())
    broken = backend.broken()

    def started() -> set[threading.Thread]:
        return set(threading.enumerate()) - before

    try:
        with pytest.raises(StoreError):
            await broken.open()
        await wait_until(lambda: not started(), 2, what="open() failed and left no thread")
    finally:
        await broken.close()  # so a leak does not hang the interpreter at exit


# --- tenants and credentials ----------------------------------------------------------------------


async def test_tenants_round_trip(store: Store) -> None:
    assert await store.get_tenant("acme") is None
    acme = Tenant("acme", ("acme.example", "mail.acme.example"), hourly_quota=100, daily_quota=1000)
    await store.ensure_tenant(acme)
    await store.ensure_tenant(Tenant("plain"))
    assert await store.get_tenant("acme") == acme
    assert await store.get_tenant("plain") == Tenant("plain")
    # ensure: an existing tenant is left as it is
    await store.ensure_tenant(Tenant("acme"))
    assert await store.get_tenant("acme") == acme


async def test_credentials_round_trip_and_replace(store: Store) -> None:
    await store.ensure_tenant(Tenant("acme"))
    await store.ensure_tenant(Tenant("other"))
    assert await store.get_credentials("app1") is None
    await store.set_credentials("acme", "app1", "hash-1")
    assert await store.get_credentials("app1") == ("acme", "hash-1")
    await store.set_credentials("other", "app1", "hash-2")
    assert await store.get_credentials("app1") == ("other", "hash-2")
    assert await store.get_credentials("APP1") is None


# --- intake ---------------------------------------------------------------------------------------


async def test_enqueue_commits_message_recipients_and_queued_events_together(
    store: Store, backend: Backend
) -> None:
    at = now_ms()
    rcpts = ("alice@example.com", "bob@example.com", "carol@example.net")
    result = await store.enqueue(message("Q1", rcpts, received_at=at, message_id="<m1@x>"), WINDOW)

    assert result.queue_id == "Q1"
    assert result.queued == rcpts
    assert result.duplicates == ()
    views = await store.recipients_of("Q1")
    assert [v.address for v in views] == list(rcpts)
    for view in views:
        assert view.status is Status.QUEUED
        assert view.attempts == 0
        assert view.due_at == at
        assert view.tenant == "t1"
        assert view.subject == "Invoice 42"
        assert view.mail_from == "app@sender.example"
    for view in views:
        (event,) = await store.events_for(view.address, "t1", 10)
        assert event.type is EventType.QUEUED
        assert event.recipient_id == view.recipient_id
        assert event.queue_id == "Q1"
        assert event.at == at
    assert await store.count_accepted("t1", at - timedelta(seconds=1)) == 3
    assert await store.count_accepted("t1", at + timedelta(seconds=1)) == 0
    assert await store.count_accepted("t2", at - timedelta(seconds=1)) == 0
    # from the outside, in one piece
    assert backend.count("messages", "queue_id = ?", ("Q1",)) == 1
    assert backend.count("recipients", "queue_id = ?", ("Q1",)) == 3
    assert backend.count("events", "queue_id = ? AND type = 'queued'", ("Q1",)) == 3


async def test_a_failing_enqueue_leaves_nothing_and_does_not_harm_its_batch(
    store: Store, backend: Backend
) -> None:
    await store.enqueue(message("Q1", ("a@example.com",)), WINDOW)

    results = await asyncio.gather(
        store.enqueue(message("Q2", ("b@example.com",)), WINDOW),
        store.enqueue(message("Q1", ("c@example.com", "d@example.com")), WINDOW),  # taken id
        store.enqueue(message("Q3", ("e@example.com",)), WINDOW),
        return_exceptions=True,
    )

    assert isinstance(results[1], StoreError)
    assert [r.queue_id for r in (results[0], results[2])] == ["Q2", "Q3"]  # type: ignore[union-attr]
    assert backend.count("recipients", "address IN ('c@example.com', 'd@example.com')") == 0
    assert backend.count("events", "address IN ('c@example.com', 'd@example.com')") == 0
    assert backend.count("recipients") == 3
    assert backend.count("events") == 3


async def test_duplicate_message_id_within_the_window_is_not_queued_again(store: Store) -> None:
    t0 = now_ms() - timedelta(hours=30)
    first = await store.enqueue(
        message("Q1", ("a@example.com", "b@example.com"), message_id="<dup@x>", received_at=t0),
        WINDOW,
    )
    assert first.queued == ("a@example.com", "b@example.com")

    # a retry one hour later, with one new recipient
    retry = await store.enqueue(
        message(
            "Q2",
            ("a@example.com", "c@example.com"),
            message_id="<dup@x>",
            received_at=t0 + timedelta(hours=1),
        ),
        WINDOW,
    )
    assert retry.queue_id == "Q2"
    assert retry.queued == ("c@example.com",)
    assert retry.duplicates == ("a@example.com",)
    assert [v.address for v in await store.recipients_of("Q2")] == ["c@example.com"]

    # a retry with only known recipients: nothing new, answered with the original queue id
    again = await store.enqueue(
        message(
            "Q3", ("b@example.com",), message_id="<dup@x>", received_at=t0 + timedelta(hours=2)
        ),
        WINDOW,
    )
    assert again.queue_id == "Q1"
    assert again.queued == ()
    assert again.duplicates == ("b@example.com",)
    assert await store.recipients_of("Q3") == []
    newest = (await store.events_for("b@example.com", "t1", 10))[0]
    assert newest.type is EventType.DUPLICATE
    assert newest.queue_id == "Q1"

    # the same Message-ID from another tenant, or no Message-ID at all, is never a duplicate
    other = await store.enqueue(
        message(
            "Q4",
            ("a@example.com",),
            tenant="t2",
            message_id="<dup@x>",
            received_at=t0 + timedelta(hours=3),
        ),
        WINDOW,
    )
    assert other.queued == ("a@example.com",)
    for n in range(2):
        plain = await store.enqueue(
            message(f"QN{n}", ("a@example.com",), received_at=t0 + timedelta(hours=3)), WINDOW
        )
        assert plain.queued == ("a@example.com",)


async def test_duplicate_message_id_outside_the_window_is_queued_again(store: Store) -> None:
    t0 = now_ms() - timedelta(hours=30)
    await store.enqueue(message("Q1", message_id="<old@x>", received_at=t0), WINDOW)

    late = await store.enqueue(
        message("Q2", message_id="<old@x>", received_at=t0 + WINDOW + timedelta(minutes=1)),
        WINDOW,
    )

    assert late.queue_id == "Q2"
    assert late.queued == ("alice@example.com",)
    assert late.duplicates == ()
    short = await store.enqueue(
        message(
            "Q3",
            message_id="<old@x>",
            received_at=t0 + WINDOW + timedelta(minutes=1, hours=2),
        ),
        timedelta(hours=1),
    )
    assert short.queued == ("alice@example.com",)


async def test_load_content_returns_the_exact_bytes(store: Store) -> None:
    content = (
        b"Received: from client.test\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
        b"line with trailing space \r\n\x00nul\xff\xfe8-bit\r\n.\r\n..dot\n bare LF \r\r\n"
        + bytes(range(256))
        + b"x" * 200_000
    )
    await store.enqueue(message("Q1", content=content), WINDOW)

    assert await store.load_content("Q1") == content
    assert await store.load_content("nope") is None


# --- relay: claims, leases, outcomes --------------------------------------------------------------


async def test_claim_due_returns_only_due_rows_oldest_first(store: Store) -> None:
    now = now_ms()
    await store.enqueue(
        message("QOLD", ("old@example.com",), received_at=now - timedelta(seconds=20)), WINDOW
    )
    await store.enqueue(
        message("QNEW", ("new@example.com",), received_at=now - timedelta(seconds=10)), WINDOW
    )
    await store.enqueue(
        message("QLATE", ("late@example.com",), received_at=now + timedelta(hours=1)), WINDOW
    )

    claimed = await store.claim_due(now, 10, "A", LEASE)

    assert [d.address for d in claimed] == ["old@example.com", "new@example.com"]
    old = claimed[0]
    assert old.queue_id == "QOLD"
    assert old.tenant == "t1"
    assert old.mail_from == "app@sender.example"
    assert old.attempts == 0
    assert old.received_at == now - timedelta(seconds=20)
    assert old.first_attempt_at is None
    assert (await ids_of(store, "QOLD"))["old@example.com"] == old.recipient_id


async def test_claim_due_respects_the_limit(store: Store) -> None:
    now = now_ms()
    rcpts = tuple(f"r{n}@example.com" for n in range(5))
    await store.enqueue(message("Q1", rcpts, received_at=now - timedelta(seconds=1)), WINDOW)

    first = await store.claim_due(now, 2, "A", LEASE)
    second = await store.claim_due(now, 10, "B", LEASE)

    assert len(first) == 2
    assert len(second) == 3
    assert {d.recipient_id for d in first}.isdisjoint(d.recipient_id for d in second)


async def test_claim_due_with_content_claims_whole_messages_with_their_content(
    store: Store,
) -> None:
    now = now_ms()
    big = tuple(f"r{n}@example.com" for n in range(5))
    await store.enqueue(
        message("QA", ("a@example.com",), received_at=now - timedelta(seconds=3), content=b"A"),
        WINDOW,
    )
    await store.enqueue(message("QB", big, received_at=now - timedelta(seconds=2)), WINDOW)
    await store.enqueue(
        message("QC", ("c@example.com",), received_at=now - timedelta(seconds=1)), WINDOW
    )
    await store.enqueue(message("QLATE", received_at=now + timedelta(hours=1)), WINDOW)

    # The limit falls inside QB: the rest of QB comes along, QC does not.
    claimed, contents = await store.claim_due_with_content(now, 3, "A", LEASE)

    assert [d.queue_id for d in claimed] == ["QA"] + ["QB"] * 5
    assert sorted(d.address for d in claimed if d.queue_id == "QB") == sorted(big)
    assert contents == {"QA": b"A", "QB": message("QB").content}
    first = claimed[0]
    assert (first.tenant, first.mail_from, first.attempts) == ("t1", "app@sender.example", 0)
    assert first.received_at == now - timedelta(seconds=3)
    assert first.recipient_id == (await ids_of(store, "QA"))["a@example.com"]
    # They are leased like claim_due's: nobody else gets them; QC is still there.
    again, more = await store.claim_due_with_content(now, 10, "B", LEASE)
    assert [d.queue_id for d in again] == ["QC"]
    assert more == {"QC": message("QC").content}
    assert await store.claim_due(now, 10, "C", LEASE) == []
    assert await store.claim_due_with_content(now, 10, "C", LEASE) == ([], {})


async def test_a_claim_is_leased_until_it_expires_then_another_owner_may_claim(
    store: Store,
) -> None:
    now = now_ms()
    await store.enqueue(
        message("Q1", ("a@example.com", "b@example.com"), received_at=now - timedelta(seconds=1)),
        WINDOW,
    )

    mine = await store.claim_due(now, 10, "A", LEASE)
    assert len(mine) == 2
    assert await store.claim_due(now, 10, "B", LEASE) == []
    assert await store.claim_due(now + LEASE - timedelta(seconds=1), 10, "B", LEASE) == []
    assert await store.next_due() == now + LEASE

    taken = await store.claim_due(now + LEASE + timedelta(seconds=1), 10, "B", LEASE)

    assert sorted(d.recipient_id for d in taken) == sorted(d.recipient_id for d in mine)
    assert await store.claim_due(now + LEASE + timedelta(seconds=2), 10, "C", LEASE) == []


async def test_record_outcomes_with_the_owner_records_them(store: Store) -> None:
    now = now_ms()
    await store.enqueue(
        message("Q1", ("a@example.com", "b@example.com"), received_at=now - timedelta(seconds=1)),
        WINDOW,
    )
    ids = await ids_of(store, "Q1")
    await store.claim_due(now, 10, "A", LEASE)
    at = now + timedelta(seconds=2)
    retry = now + timedelta(minutes=5)

    recorded = await store.record_outcomes(
        [
            sent(ids["a@example.com"], "a@example.com", at, "Q1"),
            deferred(ids["b@example.com"], "b@example.com", at, retry, "Q1"),
        ],
        "A",
    )

    assert set(recorded) == {ids["a@example.com"], ids["b@example.com"]}
    views = {v.address: v for v in await store.recipients_of("Q1")}
    a, b = views["a@example.com"], views["b@example.com"]
    assert a.status is Status.SENT
    assert a.due_at is None
    assert a.attempts == 1
    assert a.category is Category.DELIVERED
    assert a.last_reply == "250 2.0.0 OK"
    assert a.updated_at == at
    assert b.status is Status.DEFERRED
    assert b.due_at == retry
    assert b.attempts == 1
    assert b.last_reply == "451 4.3.0 try later"
    newest_a = (await store.events_for("a@example.com", None, 10))[0]
    assert newest_a.type is EventType.SENT
    assert newest_a.event_id == recorded[ids["a@example.com"]]
    assert newest_a.reply_code == 250
    assert newest_a.remote_host == "mx.example.com"
    # the deferred row comes back at its due time, with its history
    assert await store.claim_due(retry - timedelta(seconds=1), 10, "A", LEASE) == []
    (again,) = await store.claim_due(retry, 10, "A", LEASE)
    assert again.recipient_id == ids["b@example.com"]
    assert again.attempts == 1
    assert again.first_attempt_at == at


async def test_record_outcomes_from_a_fenced_owner_records_nothing(store: Store) -> None:
    now = now_ms()
    await store.enqueue(
        message("QA", ("a@example.com",), received_at=now - timedelta(seconds=2)), WINDOW
    )
    await store.enqueue(
        message("QB", ("b@example.com",), received_at=now - timedelta(seconds=1)), WINDOW
    )
    ids = {**await ids_of(store, "QA"), **await ids_of(store, "QB")}
    assert [d.address for d in await store.claim_due(now, 1, "A", LEASE)] == ["a@example.com"]
    half = now + LEASE / 2
    assert [d.address for d in await store.claim_due(half, 1, "A", LEASE)] == ["b@example.com"]
    # A's lease on a@ runs out and B takes it over; b@ is still A's
    later = now + LEASE + timedelta(seconds=1)
    taken = await store.claim_due(later, 10, "B", LEASE)
    assert [d.address for d in taken] == ["a@example.com"]
    events_before = len(await store.events_for("a@example.com", None, 100))

    recorded = await store.record_outcomes(
        [
            sent(ids["a@example.com"], "a@example.com", later, "QA"),
            sent(ids["b@example.com"], "b@example.com", later, "QB"),
        ],
        "A",
    )

    assert list(recorded) == [ids["b@example.com"]]
    (a,) = await store.recipients_of("QA")
    assert a.status is Status.QUEUED
    assert a.attempts == 0
    (b,) = await store.recipients_of("QB")
    assert b.status is Status.SENT
    assert len(await store.events_for("a@example.com", None, 100)) == events_before
    # a wholly unknown owner records nothing at all
    assert (
        await store.record_outcomes([sent(ids["a@example.com"], "a@example.com", later, "QA")], "Z")
        == {}
    )
    # the real owner still can
    done = await store.record_outcomes(
        [sent(ids["a@example.com"], "a@example.com", later, "QA")], "B"
    )
    assert list(done) == [ids["a@example.com"]]


def bounced_with_suppression(
    recipient_id: int, address: str, at: datetime, queue_id: str, reason: Any
) -> Outcome:
    """A bounce with the policy's suppression of the address (``Outcome.suppress``)."""
    return Outcome(
        recipient_id,
        Status.BOUNCED,
        attempt_event(recipient_id, address, EventType.BOUNCED, at, queue_id=queue_id,
                      code=550, enhanced="5.1.1", category=Category.NONEXISTENT_ADDRESS),
        category=Category.NONEXISTENT_ADDRESS,
        suppress=(
            Suppression("t1", address, reason, at, None, None, "nonexistent_address: 550"),
            Event(None, "t1", address, EventType.SUPPRESSED, at, queue_id=queue_id,
                  category=Category.NONEXISTENT_ADDRESS, reason=Reason.NONEXISTENT_ADDRESS),
        ),
    )  # fmt: skip


async def test_record_outcomes_writes_the_policys_suppression_in_the_same_transaction(
    store: Store, backend: Backend
) -> None:
    # Issue 13: the relay's outcome, the policy's suppression and its event commit as one;
    # a fenced outcome writes no suppression; a suppression the store refuses undoes the
    # outcomes with it.
    now = now_ms()
    await store.enqueue(message("Q1", ("a@example.com", "b@example.com")), WINDOW)
    ids = await ids_of(store, "Q1")
    assert len(await store.claim_due(now, 10, "A", LEASE)) == 2
    good = SuppressionReason.NONEXISTENT_ADDRESS
    bad = Reason.QUEUED  # a Reason, but not a SuppressionReason

    with pytest.raises((TypeError, StoreError)):
        await store.record_outcomes(
            [
                bounced_with_suppression(ids["a@example.com"], "a@example.com", now, "Q1", good),
                bounced_with_suppression(ids["b@example.com"], "b@example.com", now, "Q1", bad),
            ],
            "A",
        )
    assert backend.count("events", "type IN ('bounced', 'suppressed')") == 0
    assert backend.count("suppressions") == 0
    assert {v.status for v in await store.recipients_of("Q1")} == {Status.QUEUED}

    recorded = await store.record_outcomes(
        [
            bounced_with_suppression(ids["a@example.com"], "a@example.com", now, "Q1", good),
            sent(ids["b@example.com"], "b@example.com", now, "Q1"),
        ],
        "A",
    )
    fenced = await store.record_outcomes(
        [bounced_with_suppression(ids["b@example.com"], "b@example.com", now, "Q1", good)], "Z"
    )

    assert fenced == {}
    assert backend.count("suppressions", "address = 'b@example.com'") == 0
    found = await store.find_suppression("t1", "a@example.com", now)
    assert found is not None
    assert found.event_id == recorded[ids["a@example.com"]]  # the bounce that caused it
    assert backend.rows("SELECT type FROM events WHERE address = 'a@example.com' ORDER BY id") == [
        ("queued",),
        ("bounced",),
        ("suppressed",),
    ]
    assert backend.count("events", "type = 'suppressed' AND reason = 'nonexistent_address'") == 1


async def test_release_claims_makes_the_owners_rows_due_now(store: Store) -> None:
    now = now_ms()
    await store.enqueue(
        message("Q1", ("a@example.com", "b@example.com"), received_at=now - timedelta(seconds=1)),
        WINDOW,
    )
    await store.enqueue(
        message("Q2", ("c@example.com",), received_at=now - timedelta(seconds=1)), WINDOW
    )
    await store.enqueue(
        message("Q3", ("later@example.com",), received_at=now + timedelta(hours=1)), WINDOW
    )
    long_lease = timedelta(hours=1)
    await store.claim_due(now, 2, "A", long_lease)
    await store.claim_due(now, 10, "OTHER", long_lease)

    assert await store.release_claims("nobody") == 0
    released = await store.release_claims("A")

    assert released == 2
    due = await store.next_due()
    assert due is not None
    assert due <= datetime.now(UTC)
    back = await store.claim_due(datetime.now(UTC) + timedelta(milliseconds=1), 10, "B", long_lease)
    assert sorted(d.address for d in back) == ["a@example.com", "b@example.com"]
    assert await store.release_claims("A") == 0


async def test_release_claims_of_some_rows_gives_them_back_due_later_with_no_event(
    store: Store,
) -> None:
    """The relay gives back jobs its ready queues had no room for (issue 11): only those
    rows, only this owner's, due when it says, nothing recorded."""
    now = now_ms()
    addresses = ("a@example.com", "b@example.com", "c@example.com")
    await store.enqueue(message("Q1", addresses, received_at=now - timedelta(seconds=1)), WINDOW)
    long_lease = timedelta(hours=1)
    claimed = await store.claim_due(now, 10, "A", long_lease)
    ids = {d.address: d.recipient_id for d in claimed}
    events_before = await store.events_of_message("Q1")
    later = now + timedelta(minutes=5)

    released = await store.release_claims("A", [ids["a@example.com"], ids["b@example.com"]], later)
    assert released == 2
    assert await store.release_claims("OTHER", [ids["c@example.com"]], later) == 0
    assert await store.claim_due(later - timedelta(seconds=1), 10, "B", long_lease) == []
    back = await store.claim_due(later + timedelta(seconds=1), 10, "B", long_lease)
    assert sorted(d.address for d in back) == ["a@example.com", "b@example.com"]
    assert all(d.attempts == 0 for d in back)  # not an attempt
    assert await store.events_of_message("Q1") == events_before  # not an outcome


async def test_next_due(store: Store) -> None:
    assert await store.next_due() is None
    now = now_ms()
    await store.enqueue(message("Q1", received_at=now + timedelta(minutes=10)), WINDOW)
    await store.enqueue(
        message("Q2", ("b@example.com",), received_at=now - timedelta(minutes=5)), WINDOW
    )
    assert await store.next_due() == now - timedelta(minutes=5)

    (claimed,) = await store.claim_due(now, 10, "A", LEASE)
    assert await store.next_due() == now + LEASE

    await store.record_outcomes([sent(claimed.recipient_id, claimed.address, now, "Q2")], "A")
    assert await store.next_due() == now + timedelta(minutes=10)


async def test_update_recipient_with_a_final_status_clears_due_at(store: Store) -> None:
    now = now_ms()
    await store.enqueue(
        message("Q1", ("a@example.com", "b@example.com"), received_at=now - timedelta(seconds=1)),
        WINDOW,
    )
    ids = await ids_of(store, "Q1")
    report = Event(
        ids["a@example.com"],
        "t1",
        "a@example.com",
        EventType.REPORT,
        now,
        queue_id="Q1",
        category=Category.NONEXISTENT_ADDRESS,
        reply_code=550,
        enhanced="5.1.1",
        text="user unknown",
        reason="report_dsn",
        details={"action": "failed"},
    )

    event_id = await store.update_recipient(ids["a@example.com"], Status.BOUNCED, report)

    view = {v.address: v for v in await store.recipients_of("Q1")}["a@example.com"]
    assert view.status is Status.BOUNCED
    assert view.due_at is None
    assert view.category is Category.NONEXISTENT_ADDRESS
    assert view.last_reply == "550 5.1.1 user unknown"
    claimable = await store.claim_due(now + timedelta(days=30), 10, "A", LEASE)
    assert [d.address for d in claimable] == ["b@example.com"]
    newest = (await store.events_for("a@example.com", "t1", 10))[0]
    assert newest.event_id == event_id
    assert newest.type is EventType.REPORT
    assert newest.details == {"action": "failed"}


async def test_update_recipient_with_a_non_final_status_keeps_it_due(store: Store) -> None:
    now = now_ms()
    await store.enqueue(message("Q1", received_at=now - timedelta(seconds=1)), WINDOW)
    (rid,) = (await ids_of(store, "Q1")).values()
    note = attempt_event(
        rid,
        "alice@example.com",
        EventType.REPORT,
        now,
        queue_id="Q1",
        code=None,
        enhanced="4.4.7",
        text="delayed",
    )

    await store.update_recipient(rid, Status.DEFERRED, note)

    (view,) = await store.recipients_of("Q1")
    assert view.status is Status.DEFERRED
    assert view.due_at == now - timedelta(seconds=1)
    assert [d.recipient_id for d in await store.claim_due(now, 10, "A", LEASE)] == [rid]


async def test_update_recipient_without_a_status_keeps_the_rows_own(store: Store) -> None:
    # A complaint on a delivered recipient: the row takes the category and the reply, and
    # keeps the status it has when the write runs (not one read before).
    now = now_ms()
    await store.enqueue(message("Q1", received_at=now - timedelta(seconds=1)), WINDOW)
    (rid,) = (await ids_of(store, "Q1")).values()
    await store.claim_due(now, 10, "A", LEASE)
    assert await store.record_outcomes([sent(rid, "alice@example.com", now, "Q1")], "A")
    complaint = Event(
        rid, "t1", "alice@example.com", EventType.REPORT, now + timedelta(seconds=1),
        queue_id="Q1", category=Category.COMPLAINT, text="abuse report", reason="report_arf",
        details={"feedback_type": "abuse"},
    )  # fmt: skip

    event_id = await store.update_recipient(rid, None, complaint)

    (view,) = await store.recipients_of("Q1")
    assert view.status is Status.SENT
    assert view.due_at is None
    assert view.category is Category.COMPLAINT
    assert view.last_reply == "abuse report"
    newest = (await store.events_for("alice@example.com", "t1", 10))[0]
    assert (newest.event_id, newest.type) == (event_id, EventType.REPORT)

    # On a waiting recipient, no status keeps it waiting and due.
    await store.enqueue(message("Q2", ("bob@example.com",), received_at=now), WINDOW)
    (waiting,) = (await ids_of(store, "Q2")).values()
    note = attempt_event(waiting, "bob@example.com", EventType.REPORT, now, queue_id="Q2",
                         code=None, enhanced="4.4.7", text="delayed")  # fmt: skip
    await store.update_recipient(waiting, None, note)
    (view,) = await store.recipients_of("Q2")
    assert (view.status, view.due_at) == (Status.QUEUED, now)


async def test_a_recipient_cancelled_before_its_attempt_is_final_and_not_an_attempt(
    store: Store, backend: Backend
) -> None:
    # The relay found its address suppressed since it was queued: lease-fenced like any
    # outcome, final (never claimed again), no attempt counted.
    now = now_ms()
    await store.enqueue(message("Q1", ("a@example.com", "b@example.com"), received_at=now), WINDOW)
    ids = await ids_of(store, "Q1")
    claimed = await store.claim_due(now, 10, "A", LEASE)
    assert len(claimed) == 2
    cancel = Event(
        ids["a@example.com"], "t1", "a@example.com", EventType.SUPPRESSED, now,
        queue_id="Q1", text="Not sent: the address was suppressed (manual)", reason="manual",
    )  # fmt: skip
    outcome = Outcome(ids["a@example.com"], Status.SUPPRESSED, cancel)

    assert await store.record_outcomes([outcome], "B") == {}  # not B's lease: fenced off
    recorded = await store.record_outcomes([outcome], "A")

    assert list(recorded) == [ids["a@example.com"]]
    view = {v.address: v for v in await store.recipients_of("Q1")}["a@example.com"]
    assert (view.status, view.due_at, view.attempts) == (Status.SUPPRESSED, None, 0)
    assert view.last_reply == "Not sent: the address was suppressed (manual)"
    where = "type = 'suppressed' AND recipient_id = ?"
    assert backend.count("events", where, (view.recipient_id,)) == 1
    assert await store.release_claims("A") == 1  # b only: a is final, nobody's lease
    later = await store.claim_due(now + timedelta(days=1), 10, "A", LEASE)
    assert [d.address for d in later] == ["b@example.com"]


# --- suppressions ---------------------------------------------------------------------------------


def suppression(
    tenant: str,
    address: str,
    reason: SuppressionReason = SuppressionReason.COMPLAINT,
    *,
    since: datetime | None = None,
    expires_at: datetime | None = None,
    note: str = "",
) -> Suppression:
    return Suppression(tenant, address, reason, since or now_ms(), expires_at, None, note)


async def test_suppression_for_finds_the_clear_entry_else_the_hashed_one(store: Store) -> None:
    from gateway.core.records import hashed_address

    now = now_ms()
    assert await store.suppression_for("t1", "a@example.com", T, now) is None
    reason = SuppressionReason.NONEXISTENT_ADDRESS
    hashed = suppression("t1", hashed_address("a@example.com"), reason)
    await store.add_suppression(hashed)
    assert await store.suppression_for("t1", "a@example.com", T, now) == hashed
    assert await store.suppression_for("t2", "a@example.com", T, now) is None
    clear = suppression("t1", "a@example.com", note="in clear")
    await store.add_suppression(clear)
    assert await store.suppression_for("t1", "a@example.com", T, now) == clear
    # Expired entries do not count, in clear or hashed.
    gone = now - timedelta(seconds=1)
    await store.add_suppression(suppression("t1", "b@example.com", expires_at=gone))
    await store.add_suppression(suppression("t1", hashed_address("b@example.com"), expires_at=gone))
    assert await store.suppression_for("t1", "b@example.com", T, now) is None
    assert await store.remove_suppression("t1", "a@example.com") == 1
    assert await store.suppression_for("t1", "a@example.com", T, now) == hashed


async def test_suppressions_among_finds_a_whole_batch_in_clear_or_hashed(store: Store) -> None:
    from gateway.core.records import hashed_address

    now = now_ms()
    assert await store.suppressions_among([], now) == {}
    clear = suppression("t1", "clear@example.com", SuppressionReason.MANUAL, note="in clear")
    erased = suppression("t1", hashed_address("erased@example.com"), SuppressionReason.OPT_OUT)
    both_hashed = suppression("t1", hashed_address("both@example.com"))
    both_clear = suppression("t1", "both@example.com", SuppressionReason.MANUAL)
    other_tenant = suppression("t2", "clear2@example.com")
    gone = now - timedelta(seconds=1)
    for entry in (clear, erased, both_hashed, both_clear, other_tenant):
        await store.add_suppression(entry)
    await store.add_suppression(suppression("t1", "old@example.com", expires_at=gone))
    old2 = hashed_address("old2@example.com")
    await store.add_suppression(suppression("t1", old2, expires_at=gone))
    later = suppression("t1", "later@example.com", expires_at=now + timedelta(days=1))
    await store.add_suppression(later)
    asked = [
        ("t1", "clear@example.com", T),
        ("t1", "erased@example.com", T),
        ("t1", "both@example.com", T),
        ("t1", "clear2@example.com", T),  # suppressed in t2 only
        ("t2", "clear@example.com", T),  # suppressed in t1 only
        ("t2", "clear2@example.com", T),
        ("t1", "old@example.com", T),
        ("t1", "old2@example.com", T),
        ("t1", "later@example.com", T),
        ("t1", "nobody@example.com", T),
        ("t1", "clear@example.com", T),  # asked twice: answered once
    ]

    found = await store.suppressions_among(asked, now)

    assert found == {
        ("t1", "clear@example.com", T): clear,
        ("t1", "erased@example.com", T): erased,
        ("t1", "both@example.com", T): both_clear,  # the entry in clear wins, as suppression_for
        ("t2", "clear2@example.com", T): other_tenant,
        ("t1", "later@example.com", T): later,
    }
    for (tenant, address, _), entry in found.items():
        assert await store.suppression_for(tenant, address, T, now) == entry


async def test_suppressions_among_answers_a_batch_larger_than_one_statement(
    store: Store,
) -> None:
    from gateway.core.records import hashed_address

    now = now_ms()
    asked = [("t1", f"r{n:04d}@example.com", T) for n in range(1000)]
    wanted = {pair: n for n, pair in enumerate(asked) if n % 7 == 0}
    for (tenant, address, _), n in wanted.items():
        key = hashed_address(address) if n % 2 else address
        await store.add_suppression(suppression(tenant, key, note=str(n)))

    found = await store.suppressions_among(asked, now)

    assert {pair: int(entry.note) for pair, entry in found.items()} == wanted


async def test_suppressions_add_find_replace_and_remove_for_one_tenant(store: Store) -> None:
    now = now_ms()
    entry = Suppression(
        "t1", "a@example.com", SuppressionReason.COMPLAINT, now, None, 17, "abuse report"
    )
    assert await store.find_suppression("t1", "a@example.com", now) is None

    await store.add_suppression(entry)

    assert await store.find_suppression("t1", "a@example.com", now) == entry
    assert await store.find_suppression("t2", "a@example.com", now) is None
    assert await store.find_suppression("t1", "b@example.com", now) is None
    # adding again replaces the entry
    replaced = suppression(
        "t1", "a@example.com", SuppressionReason.MANUAL, since=now + timedelta(seconds=1), note="x"
    )
    await store.add_suppression(replaced)
    assert await store.find_suppression("t1", "a@example.com", now) == replaced

    assert await store.remove_suppression("t1", "a@example.com") == 1
    assert await store.find_suppression("t1", "a@example.com", now) is None
    assert await store.remove_suppression("t1", "a@example.com") == 0


def suppressed_event(tenant: str, address: str, at: datetime, reason: Reason) -> Event:
    return Event(
        None, tenant, address, EventType.SUPPRESSED, at, reason=reason,
        text=f"Suppressed ({reason})",
    )  # fmt: skip


async def test_suppress_with_event_writes_both_and_links_the_suppression_to_its_event(
    store: Store, backend: Backend
) -> None:
    # Issue 13: the suppression and its event commit together. A suppression without an
    # event id links to the new event; one with an id (the policy's cause) keeps it.
    now = now_ms()
    cause = await store.record_event(
        attempt_event(None, "b@example.com", EventType.BOUNCED, now, code=550, enhanced="5.1.1")
    )

    opted = await store.suppress_with_event(
        Suppression("t1", "a@example.com", SuppressionReason.OPT_OUT, now, None, None, "e-mail"),
        suppressed_event("t1", "a@example.com", now, Reason.OPT_OUT),
    )
    policy = await store.suppress_with_event(
        Suppression("t1", "b@example.com", SuppressionReason.NONEXISTENT_ADDRESS, now, None,
                    cause, "bounce"),
        suppressed_event("t1", "b@example.com", now, Reason.NONEXISTENT_ADDRESS),
    )  # fmt: skip

    assert opted is not None
    assert policy is not None
    assert opted[0].event_id == opted[1]
    assert await store.find_suppression("t1", "a@example.com", now) == opted[0]
    assert policy[0].event_id == cause != policy[1]
    assert await store.find_suppression("t1", "b@example.com", now) == policy[0]
    for address, (_, event_id) in (("a@example.com", opted), ("b@example.com", policy)):
        assert backend.rows(
            "SELECT id, type, reason FROM events WHERE address = ? AND type = 'suppressed'",
            (address,),
        ) == [(event_id, "suppressed", "opt_out" if address[0] == "a" else "nonexistent_address")]


async def test_suppress_with_event_is_one_transaction_a_failing_second_write_leaves_neither(
    store: Store, backend: Backend
) -> None:
    # The event is written first; a suppression the store refuses (a reason that is no
    # SuppressionReason) fails after it, inside the same transaction: nothing of either
    # stays, an existing suppression is left as it was, and a write beside it commits.
    now = now_ms()
    before = Suppression("t1", "old@example.com", SuppressionReason.MANUAL, now, None, None, "x")
    await store.add_suppression(before)
    bad = Reason.QUEUED  # a Reason, but not a SuppressionReason

    results = await asyncio.gather(
        store.suppress_with_event(
            Suppression("t1", "new@example.com", bad, now),  # type: ignore[arg-type]
            suppressed_event("t1", "new@example.com", now, Reason.MANUAL),
        ),
        store.suppress_with_event(
            Suppression("t1", "old@example.com", bad, now),  # type: ignore[arg-type]
            suppressed_event("t1", "old@example.com", now, Reason.MANUAL),
        ),
        store.record_event(suppressed_event("t1", "other@example.com", now, Reason.MANUAL)),
        return_exceptions=True,
    )

    assert isinstance(results[0], (TypeError, StoreError))
    assert isinstance(results[1], (TypeError, StoreError))
    assert isinstance(results[2], int)
    assert backend.count("events", "address IN ('new@example.com', 'old@example.com')") == 0
    assert backend.count("suppressions", "address = 'new@example.com'") == 0
    assert await store.find_suppression("t1", "old@example.com", now) == before
    assert backend.count("events", "address = 'other@example.com'") == 1
    # and an event the store refuses writes no suppression either
    with pytest.raises((TypeError, StoreError)):
        await store.suppress_with_event(
            Suppression("t1", "new@example.com", SuppressionReason.MANUAL, now),
            suppressed_event("t1", "new@example.com", now, "no_such_reason"),  # type: ignore[arg-type]
        )
    assert backend.count("suppressions", "address = 'new@example.com'") == 0
    assert backend.count("events", "address = 'new@example.com'") == 0


async def test_suppress_with_event_keeping_a_permanent_one_writes_nothing(
    store: Store, backend: Backend
) -> None:
    now = now_ms()
    complaint = Suppression("t1", "a@example.com", SuppressionReason.COMPLAINT, now, None, 7, "")
    await store.add_suppression(complaint)

    kept = await store.suppress_with_event(
        Suppression("t1", "a@example.com", SuppressionReason.OPT_OUT, now),
        suppressed_event("t1", "a@example.com", now, Reason.OPT_OUT),
        keep_permanent=True,
    )

    assert kept is None
    assert await store.find_suppression("t1", "a@example.com", now) == complaint
    assert backend.count("events", "address = 'a@example.com'") == 0


def _admin_event(view: RecipientView, type_: EventType, reason: Reason) -> Event:
    return Event(
        view.recipient_id, view.tenant, view.address, type_, now_ms(), queue_id=view.queue_id,
        reason=reason, text="by administrator",
    )  # fmt: skip


async def _admin_write(store: Any, action: str, audit: Callable[[Any], Any]) -> Any:
    """One admin write with its ``audit`` builder, on a message Q1 (two pending recipients)
    and a suppression of a@example.com, both in place."""
    now = now_ms()
    if action == "hold":
        return await store.set_held(
            "Q1", True, lambda v: _admin_event(v, EventType.HELD, Reason.HELD_BY_ADMIN),
            audit=audit,
        )  # fmt: skip
    if action == "delete":
        return await store.cancel_message(
            "Q1", lambda v: _admin_event(v, EventType.EXPIRED, Reason.DELETED_BY_ADMIN),
            audit=audit,
        )  # fmt: skip
    if action == "erase":
        return await store.erase_address("x@example.com", now, audit=audit)
    if action == "create_tenant":
        settings = TenantSettings(Tenant("t9"))
        return await store.create_tenant(settings, now, credentials=("u9", "hash"), audit=audit)
    if action == "update_tenant":
        return await store.update_tenant_settings("t1", {"hourly_quota": 5}, audit=audit)
    if action == "credentials":
        return await store.set_credentials("t1", "u1", "hash", audit=audit)
    if action == "suppress":
        return await store.suppress_with_event(
            Suppression("t1", "b@example.com", SuppressionReason.MANUAL, now),
            suppressed_event("t1", "b@example.com", now, Reason.MANUAL),
            audit=audit,
        )
    return await store.lift_suppressions(
        "a@example.com", None,
        lambda found: Event(None, found.tenant, "a@example.com", EventType.UNSUPPRESSED, now,
                            reason=Reason.ADMIN_UNBLOCK),
        audit=audit,
    )  # fmt: skip


# action -> (events it writes, the SQL that sees its change, rows that SQL finds after it)
ADMIN_WRITES = {
    "hold": ("type = 'held'", "SELECT count(*) FROM recipients WHERE status = 'held'", 2),
    "delete": ("type = 'expired'", "SELECT count(*) FROM recipients WHERE status = 'expired'", 2),
    "erase": ("address = 'x@example.com'", "SELECT count(*) FROM events", 1),
    "create_tenant": (
        "1 = 0",
        "SELECT count(*) FROM tenants t JOIN credentials c ON c.tenant = t.name"
        " WHERE t.name = 't9'",
        1,
    ),
    "update_tenant": ("1 = 0", "SELECT count(*) FROM tenants WHERE hourly_quota = 5", 1),
    "credentials": ("1 = 0", "SELECT count(*) FROM credentials WHERE username = 'u1'", 1),
    "suppress": (
        "type = 'suppressed'",
        "SELECT count(*) FROM suppressions WHERE address = 'b@example.com'",
        1,
    ),
    "unblock": (
        "type = 'unsuppressed'",
        "SELECT count(*) FROM suppressions WHERE address = 'a@example.com'",
        0,
    ),
}


@pytest.mark.parametrize("action", ADMIN_WRITES)
async def test_an_admin_write_and_its_audit_entry_commit_together_or_not_at_all(
    store: Store, backend: Backend, action: str
) -> None:
    # Issue 13: the change, its events and the admin audit entry in one transaction. An
    # audit entry the store cannot write (a detail that is no JSON) undoes the change.
    events, changed, after = ADMIN_WRITES[action]
    await store.enqueue(message("Q1", ("x@example.com", "y@example.com")), WINDOW)
    await store.add_suppression(suppression("t1", "a@example.com"))
    await store.ensure_tenant(Tenant("t1"))
    before = backend.rows(changed)
    events_before = backend.count("events", events)

    def broken(result: Any) -> AuditEntry:
        return AuditEntry(now_ms(), "ops", f"test.{action}", "Q1", {"bad": object()})

    with pytest.raises((TypeError, StoreError)):
        await _admin_write(store, action, broken)

    assert backend.rows(changed) == before
    assert backend.count("events", events) == events_before
    assert backend.count("admin_audit") == 0

    seen: list[Any] = []

    def entry(result: Any) -> AuditEntry:
        seen.append(result)
        return AuditEntry(now_ms(), "ops", f"test.{action}", "Q1", {"n": 1})

    result = await _admin_write(store, action, entry)

    assert seen == [result]
    assert backend.rows(changed) == [(after,)]
    if action == "erase":
        assert backend.count("events", events) == 0
    elif events != "1 = 0":
        assert backend.count("events", events) > events_before
    assert backend.rows("SELECT actor, action, target FROM admin_audit") == [
        ("ops", f"test.{action}", "Q1")
    ]


async def test_expired_suppressions_are_not_found(store: Store) -> None:
    now = now_ms()
    await store.add_suppression(
        suppression(
            "t1",
            "past@example.com",
            SuppressionReason.REPEATED_FAILURES,
            since=now - timedelta(days=8),
            expires_at=now - timedelta(seconds=1),
        )
    )
    await store.add_suppression(
        suppression(
            "t1",
            "full@example.com",
            SuppressionReason.REPEATED_FAILURES,
            since=now,
            expires_at=now + timedelta(days=7),
        )
    )

    assert await store.find_suppression("t1", "past@example.com", now) is None
    found = await store.find_suppression("t1", "full@example.com", now)
    assert found is not None
    assert found.expires_at == now + timedelta(days=7)
    assert await store.find_suppression("t1", "full@example.com", now + timedelta(days=7)) is None


async def test_remove_suppression_for_all_tenants(store: Store) -> None:
    for tenant in ("t1", "t2", "t3"):
        await store.add_suppression(suppression(tenant, "a@example.com"))
    await store.add_suppression(suppression("t1", "b@example.com"))

    assert await store.remove_suppression(None, "a@example.com") == 3

    now = now_ms()
    for tenant in ("t1", "t2", "t3"):
        assert await store.find_suppression(tenant, "a@example.com", now) is None
    assert await store.find_suppression("t1", "b@example.com", now) is not None


async def test_list_suppressions_with_filters_and_paging(store: Store) -> None:
    entries = [
        suppression("t1", "a@example.com", SuppressionReason.COMPLAINT),
        suppression("t1", "b@example.com", SuppressionReason.NONEXISTENT_ADDRESS),
        suppression("t1", "c@example.com", SuppressionReason.COMPLAINT),
        suppression("t2", "a@example.com", SuppressionReason.OPT_OUT),
        suppression("t2", "d@example.com", SuppressionReason.COMPLAINT),
    ]
    for entry in reversed(entries):
        await store.add_suppression(entry)

    everything = await store.list_suppressions(None, None, 100, "")
    assert [(s.tenant, s.address) for s in everything] == [(e.tenant, e.address) for e in entries]
    assert everything == entries
    t1 = await store.list_suppressions("t1", None, 100, "")
    assert [s.address for s in t1] == ["a@example.com", "b@example.com", "c@example.com"]
    complaints = await store.list_suppressions(None, SuppressionReason.COMPLAINT, 100, "")
    assert [(s.tenant, s.address) for s in complaints] == [
        ("t1", "a@example.com"),
        ("t1", "c@example.com"),
        ("t2", "d@example.com"),
    ]
    both = await store.list_suppressions("t2", SuppressionReason.COMPLAINT, 100, "")
    assert [(s.tenant, s.address) for s in both] == [("t2", "d@example.com")]
    # pages of two: the cursor is "tenant address" of the last row seen
    pages, after = [], ""
    while True:
        page = await store.list_suppressions(None, None, 2, after)
        if not page:
            break
        pages.append([(s.tenant, s.address) for s in page])
        after = f"{page[-1].tenant} {page[-1].address}"
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [row for p in pages for row in p] == [(e.tenant, e.address) for e in entries]


# --- history --------------------------------------------------------------------------------------


async def test_events_for_is_newest_first_with_tenant_filter_and_limit(store: Store) -> None:
    t0 = now_ms()
    plan = [
        ("t1", EventType.QUEUED, 0),
        ("t2", EventType.QUEUED, 1),
        ("t1", EventType.DEFERRED, 2),
        ("t1", EventType.SENT, 3),
        ("t2", EventType.BOUNCED, 4),
    ]
    ids = []
    for tenant, type_, offset in reversed(plan):  # written out of order on purpose
        ids.append(
            await store.record_event(
                attempt_event(
                    None, "a@example.com", type_, t0 + timedelta(seconds=offset), tenant=tenant
                )
            )
        )
    await store.record_event(attempt_event(None, "other@example.com", EventType.SENT, t0))
    # two events at the same instant: the later write comes first
    same_1 = await store.record_event(attempt_event(None, "same@example.com", EventType.QUEUED, t0))
    same_2 = await store.record_event(attempt_event(None, "same@example.com", EventType.SENT, t0))

    every = await store.events_for("a@example.com", None, 100)
    assert [(e.tenant, e.type) for e in every] == [(t, ty) for t, ty, _ in reversed(plan)]
    assert [e.at for e in every] == sorted((e.at for e in every), reverse=True)
    assert {e.event_id for e in every} == set(ids)
    t1 = await store.events_for("a@example.com", "t1", 100)
    assert [e.type for e in t1] == [EventType.SENT, EventType.DEFERRED, EventType.QUEUED]
    assert [e.type for e in await store.events_for("a@example.com", "t1", 2)] == [
        EventType.SENT,
        EventType.DEFERRED,
    ]
    assert [e.event_id for e in await store.events_for("same@example.com", None, 10)] == [
        same_2,
        same_1,
    ]
    assert await store.events_for("nobody@example.com", None, 10) == []


async def test_record_event_round_trips_every_field(store: Store) -> None:
    at = now_ms()
    event = Event(
        None,
        "t1",
        "a@example.com",
        EventType.BOUNCED,
        at,
        queue_id="Q9",
        category=Category.MAILBOX_FULL,
        reply_code=552,
        enhanced="5.2.2",
        text="Mailbox full — désolé",
        remote_host="mx1.example.com",
        reason=Reason.PERMANENT_FAILURE,
        details={"provider_hint": "gmail", "action": "failed"},
    )

    event_id = await store.record_event(event)

    (back,) = await store.events_for("a@example.com", "t1", 10)
    assert back == Event(
        event.recipient_id,
        event.tenant,
        event.address,
        event.type,
        event.at,
        event.queue_id,
        event.category,
        event.reply_code,
        event.enhanced,
        event.text,
        event.remote_host,
        event.reason,
        event.details,
        event_id,
    )


async def test_failure_streak_holds_final_outcomes_for_the_address_newest_first(
    store: Store,
) -> None:
    t0 = now_ms() - timedelta(days=40)
    address = "a@example.com"

    async def ev(type_: EventType, days: int, tenant: str = "t1", addr: str = address) -> int:
        return await store.record_event(
            attempt_event(None, addr, type_, t0 + timedelta(days=days), tenant=tenant)
        )

    await ev(EventType.BOUNCED, 0)  # before the window
    await ev(EventType.QUEUED, 11)
    await ev(EventType.DEFERRED, 12)
    bounced = await ev(EventType.BOUNCED, 13)
    sent_ = await ev(EventType.SENT, 14)
    report = await ev(EventType.REPORT, 15)
    expired = await ev(EventType.EXPIRED, 16)
    await ev(EventType.SUPPRESSED, 17)
    await ev(EventType.BOUNCED, 18, tenant="t2")
    await ev(EventType.BOUNCED, 18, addr="b@example.com")

    streak = await store.failure_streak("t1", address, t0 + timedelta(days=10))

    assert [e.event_id for e in streak] == [expired, report, sent_, bounced]
    assert await store.failure_streak("t1", address, t0 + timedelta(days=20)) == []


async def test_queue_summary_counts_statuses_and_finds_the_oldest_deferred(store: Store) -> None:
    assert (await store.queue_summary()).counts in ({}, {s.value: 0 for s in Status})
    assert (await store.queue_summary()).oldest_deferred is None
    now = now_ms()
    old, young = now - timedelta(hours=5), now - timedelta(hours=1)
    await store.enqueue(
        message("QOLD", ("a@example.com", "b@example.com"), received_at=old), WINDOW
    )
    await store.enqueue(
        message("QYOUNG", ("c@example.com", "d@example.com"), received_at=young), WINDOW
    )
    await store.enqueue(
        message("QOLDEST", ("e@example.com",), received_at=old - timedelta(hours=1)), WINDOW
    )
    claimed = {d.address: d for d in await store.claim_due(now, 10, "A", LEASE)}

    await store.record_outcomes(
        [
            sent(claimed["a@example.com"].recipient_id, "a@example.com", now, "QOLD"),
            deferred(
                claimed["b@example.com"].recipient_id,
                "b@example.com",
                now,
                now + timedelta(hours=1),
                "QOLD",
            ),
            deferred(
                claimed["c@example.com"].recipient_id,
                "c@example.com",
                now,
                now + timedelta(hours=1),
                "QYOUNG",
            ),
            sent(claimed["e@example.com"].recipient_id, "e@example.com", now, "QOLDEST"),
        ],
        "A",
    )

    summary = await store.queue_summary()
    counts = {k: v for k, v in summary.counts.items() if v}
    assert counts == {"sent": 2, "deferred": 2, "queued": 1}
    assert summary.oldest_deferred == old


# --- backup ---------------------------------------------------------------------------------------


async def test_backup_is_a_readable_copy_with_the_same_rows(store: Store, backend: Backend) -> None:
    now = now_ms()
    content = b"Subject: backup\r\n\r\n\x00\xff body\r\n"
    await store.ensure_tenant(Tenant("t1", ("example.com",)))
    for n in range(20):
        await store.enqueue(
            message(
                f"Q{n}", (f"r{n}@example.com", "x@example.com"), content=content, received_at=now
            ),
            WINDOW,
        )
    await store.add_suppression(suppression("t1", "s@example.com"))

    copy = await backend.backup_copy(store, "backup.db")
    if copy is None:
        pytest.skip(f"{backend.name} has no in-process backup")

    for table in ("tenants", "messages", "recipients", "events", "suppressions", "schema_version"):
        assert copy.count(table) == backend.count(table), table
    assert copy.count("messages") == 20
    reopened = copy.make()
    await reopened.open()
    try:
        assert await reopened.load_content("Q7") == content
        assert len(await reopened.events_for("x@example.com", "t1", 100)) == 20
        assert await reopened.get_tenant("t1") == Tenant("t1", ("example.com",))
    finally:
        await reopened.close()


# --- group commit and durability ------------------------------------------------------------------


async def test_enqueue_is_visible_to_another_connection_as_soon_as_it_returns(
    store: Store, backend: Backend
) -> None:
    for n in range(5):
        await store.enqueue(message(f"Q{n}", ("a@example.com", "b@example.com")), WINDOW)
        assert backend.count("messages", "queue_id = ?", (f"Q{n}",)) == 1
        assert backend.count("recipients", "queue_id = ?", (f"Q{n}",)) == 2
        assert backend.count("events", "queue_id = ? AND type = 'queued'", (f"Q{n}",)) == 2


async def test_200_concurrent_enqueues_all_commit(store: Store, backend: Backend) -> None:
    count = 200
    seen: list[int] = []

    async def one(n: int) -> None:
        result = await store.enqueue(
            message(
                f"Q{n:03d}", (f"r{n}@example.com", "shared@example.com"), message_id=f"<{n}@x>"
            ),
            WINDOW,
        )
        assert result.queued == (f"r{n}@example.com", "shared@example.com")
        # durable on return: another connection sees this message already
        seen.append(backend.count("recipients", "queue_id = ?", (f"Q{n:03d}",)))

    async with asyncio.timeout(60):
        await asyncio.gather(*(one(n) for n in range(count)))

    assert seen == [2] * count
    assert backend.count("messages") == count
    assert backend.count("recipients") == 2 * count
    assert backend.count("events", "type = 'queued'") == 2 * count
    assert len(await store.events_for("shared@example.com", "t1", 1000)) == count
    assert await store.count_accepted("t1", now_ms() - timedelta(minutes=5)) == 2 * count


# --- failure --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["connection", "process"])
async def test_enqueue_while_the_database_is_locked_raises_store_unavailable(
    backend: Backend, how: str
) -> None:
    store = backend.make(busy_timeout=timedelta(seconds=0.2))
    await store.open()
    try:
        await store.enqueue(message("Q0"), WINDOW)
        with backend.exclusive_lock(how):
            started = time.monotonic()
            async with asyncio.timeout(10):
                results = await asyncio.gather(
                    store.enqueue(message("Q1", ("a@example.com", "b@example.com")), WINDOW),
                    store.enqueue(message("Q2", ("c@example.com",)), WINDOW),
                    return_exceptions=True,
                )
            elapsed = time.monotonic() - started
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert elapsed < 5, f"busy_timeout of 0.2 s took {elapsed:.1f} s"
        # nothing of the failed transactions exists
        for queue_id in ("Q1", "Q2"):
            assert backend.count("messages", "queue_id = ?", (queue_id,)) == 0
            assert backend.count("recipients", "queue_id = ?", (queue_id,)) == 0
            assert backend.count("events", "queue_id = ?", (queue_id,)) == 0
        assert backend.count("recipients") == 1
        # and the store recovers once the lock is gone
        again = await store.enqueue(message("Q1", ("a@example.com", "b@example.com")), WINDOW)
        assert again.queued == ("a@example.com", "b@example.com")
        assert backend.count("recipients", "queue_id = ?", ("Q1",)) == 2
    finally:
        await store.close()
