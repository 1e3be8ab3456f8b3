"""Typed reasons in both stores: migration 007 and the write guard.

Rows an older gateway wrote (``intake_refused`` refusals, ``queued`` events without a
reason, free strings) are put in the database from outside, as that gateway left them; the
store is then opened with migration 007 not yet applied (its ``schema_version`` row, and
the later ones', are removed: 007 only rewrites data and 008 only adds triggers, written to
be applied again, so this is the state an upgrade starts from).
After it, every reason in ``events`` and ``suppressions`` is a ``Reason`` member, refusals
carry the check that refused, and a store refuses to write a reason that is not one.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.core import replies
from gateway.core.model import Event, EventType, Reason, Suppression, SuppressionReason
from tests.backends import Backend, PostgresBackend, SqliteBackend
from tests.contract.test_store_contract import WINDOW, message

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def execute(backend: Backend, sql: str, params: tuple[Any, ...] = ()) -> None:
    """A committed write from outside the store (``?`` placeholders)."""
    if isinstance(backend, SqliteBackend):
        with sqlite3.connect(backend.path) as conn:
            conn.execute(sql, params)
        return
    assert isinstance(backend, PostgresBackend)
    count = iter(range(1, 100))
    pg_sql = "".join(f"${next(count)}" if c == "?" else c for c in sql)
    backend.server.execute(backend.database, pg_sql, *params)


def old_event(
    backend: Backend,
    address: str,
    type_: str,
    reason: str,
    reply: replies.Reply | None = None,
    details: dict[str, str] | None = None,
) -> None:
    execute(
        backend,
        "INSERT INTO events (tenant, address, type, at, reply_code, enhanced, text, reason,"
        " details) VALUES ('t1', ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            address,
            type_,
            T0.timestamp(),
            None if reply is None else reply.code,
            None if reply is None else reply.enhanced,
            "" if reply is None else reply.text,
            reason,
            json.dumps(details or {}),
        ),
    )


async def opened(backend: Backend) -> Any:
    """An opened store (``Any``: the admin reads, ``events_for`` and ``list_suppressions``,
    are not on the ``Store`` port)."""
    store: Any = backend.make()
    await store.open()
    return store


def quota_reply() -> replies.Reply:
    return replies.QUOTA_EXHAUSTED.with_text(
        "The tenant's hourly quota of 5 recipients is exhausted; it frees up gradually"
    )


def typo_reply() -> replies.Reply:
    return replies.RECIPIENT_TYPO.with_text(
        "The recipient domain looks misspelt: did you mean ana@gmail.com?"
    )


# (address, type, old reason, reply, details) -> the reason after migration 007
OLD_ROWS: list[tuple[str, str, str, replies.Reply | None, dict[str, str] | None, Reason]] = [
    # refusals that kept the check's reason in details (the reply alone would not tell)
    (
        "d-quota@x.example",
        "rejected",
        "intake_refused",
        replies.TOO_MANY_RECIPIENTS,
        {"reason": "quota"},
        Reason.QUOTA,
    ),
    (
        "d-typo@x.example",
        "rejected",
        "intake_refused",
        replies.RECIPIENT_SYNTAX,
        {"reason": "typo", "suggestion": "d@gmail.com"},
        Reason.TYPO,
    ),
    # older refusals: the reply sent names the check
    ("typo@gmial.com", "rejected", "intake_refused", typo_reply(), None, Reason.TYPO),
    ("bad@x.example", "rejected", "intake_refused", replies.RECIPIENT_SYNTAX, None, Reason.INVALID),
    (
        "nx@nowhere.example",
        "rejected",
        "intake_refused",
        replies.NO_SUCH_DOMAIN,
        None,
        Reason.NO_SUCH_DOMAIN,
    ),
    ("nm@nomail.example", "rejected", "intake_refused", replies.NULL_MX, None, Reason.NULL_MX),
    (
        "tf@broken.example",
        "rejected",
        "intake_refused",
        replies.DNS_TEMPFAIL,
        None,
        Reason.DNS_TEMPFAIL,
    ),
    (
        "sup@x.example",
        "rejected",
        "intake_refused",
        replies.SUPPRESSED.with_text("The recipient is on the suppression list (complaint) since"),
        None,
        Reason.SUPPRESSED,
    ),
    ("quota@x.example", "rejected", "intake_refused", quota_reply(), None, Reason.QUOTA),
    (
        "many@x.example",
        "rejected",
        "intake_refused",
        replies.TOO_MANY_RECIPIENTS,
        None,
        Reason.TOO_MANY_RECIPIENTS,
    ),
    (
        "store@x.example",
        "rejected",
        "intake_refused",
        replies.STORE_FAILED,
        None,
        Reason.STORE_UNAVAILABLE,
    ),
    # a details reason that is not a check's: the reply decides
    (
        "junk@nowhere.example",
        "rejected",
        "intake_refused",
        replies.NO_SUCH_DOMAIN,
        {"reason": "nonsense"},
        Reason.NO_SUCH_DOMAIN,
    ),
    # nothing tells: legacy_unknown
    (
        "who@x.example",
        "rejected",
        "intake_refused",
        replies.Reply(550, "5.0.0", "No"),
        None,
        Reason.LEGACY_UNKNOWN,
    ),
    ("q@x.example", "queued", "", None, None, Reason.QUEUED),
    ("r@x.example", "report", "report_carrier_pigeon", None, None, Reason.REPORT_OTHER),
    ("s@x.example", "sent", "accepted", None, None, Reason.ACCEPTED),
    ("u@x.example", "unsuppressed", "admin_unblock", None, None, Reason.ADMIN_UNBLOCK),
    ("f@x.example", "bounced", "remote_reply", None, None, Reason.LEGACY_UNKNOWN),
    ("e@x.example", "deferred", "", None, None, Reason.LEGACY_UNKNOWN),
]


async def test_old_rows_get_typed_reasons(backend: Backend) -> None:
    store = await opened(backend)
    await store.close()
    for address, type_, reason, reply, details, _ in OLD_ROWS:
        old_event(backend, address, type_, reason, reply, details)
    execute(
        backend,
        "INSERT INTO suppressions (tenant, address, reason, since, note) VALUES"
        " ('t1', 'old@x.example', 'hard_bounce', ?, 'from the old list'),"
        " ('t1', 'kept@x.example', 'complaint', ?, '')",
        (T0.timestamp(), T0.timestamp()),
    )
    # The schema as a gateway before migration 007 left it (the later migrations only add
    # triggers and are applied again on top).
    execute(backend, "DELETE FROM schema_version WHERE version >= 7")

    store = await opened(backend)
    try:
        for address, _, _, _, _, expected in OLD_ROWS:
            (event,) = await store.events_for(address, None, 5)
            assert event.reason is expected, (address, event.reason)
        found = {s.address: s for s in await store.list_suppressions(None, None, 10)}
        # Still blocked: an unknown suppression reason becomes ``manual``, the old one noted.
        assert found["old@x.example"].reason is SuppressionReason.MANUAL
        assert found["old@x.example"].note == (
            "reason before migration 007: hard_bounce; from the old list"
        )
        assert found["kept@x.example"].reason is SuppressionReason.COMPLAINT
    finally:
        await store.close()
    assert backend.rows("SELECT version FROM schema_version WHERE version = 7") == [(7,)]
    every = {r for (r,) in backend.rows("SELECT DISTINCT reason FROM events")}
    every |= {r for (r,) in backend.rows("SELECT DISTINCT reason FROM suppressions")}
    members = {r.value for r in Reason}
    assert every - members == set()
    assert "intake_refused" not in every


async def test_every_reason_a_store_writes_is_a_member(backend: Backend) -> None:
    """What the store writes itself (queued and duplicate events in SQL) is typed too."""
    store = await opened(backend)
    try:
        await store.enqueue(message("Q1", message_id="<m1@x.example>"), WINDOW)
        # The same Message-ID again within the window: a duplicate, not queued again.
        await store.enqueue(message("Q2", message_id="<m1@x.example>"), WINDOW)
        reasons = {e.reason for e in await store.events_for("alice@example.com", None, 10)}
    finally:
        await store.close()
    assert reasons == {Reason.QUEUED, Reason.DUPLICATE_MESSAGE_ID}
    stored = {r for (r,) in backend.rows("SELECT DISTINCT reason FROM events")}
    assert stored == {"queued", "duplicate_message_id"}


async def test_a_reason_that_is_not_a_member_is_refused(backend: Backend) -> None:
    store = await opened(backend)
    try:
        untyped: Any = "intake_refused"
        bad = Event(None, "t1", "a@x.example", EventType.REJECTED, T0, reason=untyped)
        with pytest.raises(TypeError, match="intake_refused"):
            await store.record_event(bad)
        not_one: Any = "hard_bounce"
        wrong = Suppression("t1", "a@x.example", not_one, T0)
        with pytest.raises(TypeError, match="hard_bounce"):
            await store.add_suppression(wrong)
        # A plain string that names a member is the member.
        plain: Any = "quota"
        good = Event(None, "t1", "b@x.example", EventType.REJECTED, T0, reason=plain)
        await store.record_event(good)
    finally:
        await store.close()
    assert backend.count("events", "address = ?", ("a@x.example",)) == 0
    assert backend.count("suppressions") == 0
    assert backend.rows("SELECT reason FROM events WHERE address = ?", ("b@x.example",)) == [
        ("quota",)
    ]
