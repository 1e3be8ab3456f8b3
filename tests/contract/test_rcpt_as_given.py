"""The recipient as the client gave it (issue 14 item 7, migration 014), on every backend:
written by the enqueue beside the canonical address, read back by both claims as
``Delivery.rcpt_to``; the canonical address stays the key (duplicates, look-ups)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.addresses import as_given
from gateway.core.model import NewMessage
from gateway.core.ports import Store
from tests.backends import Backend

LEASE = timedelta(seconds=60)
WINDOW = timedelta(hours=24)


def _message(queue_id: str, recipients: tuple[str, ...], rcpt_to: tuple[str, ...]) -> NewMessage:
    now = datetime.now(UTC).replace(microsecond=0)
    return NewMessage(
        queue_id=queue_id,
        tenant="t1",
        mail_from="app@sender.example",
        recipients=recipients,
        content=b"Subject: Case\r\n\r\nHi.\r\n",
        message_id="<case-1@sender.example>",
        subject="Case",
        received_at=now,
        client_address="127.0.0.1",
        rcpt_to=rcpt_to,
    )


async def test_the_form_given_is_stored_and_claimed_beside_the_canonical_address(
    store: Store, backend: Backend
) -> None:
    await store.enqueue(
        _message("Q1", ("john.smith@example.com", "ann@example.com"), ("John.Smith@example.com",)),
        WINDOW,
    )
    assert sorted(backend.rows("SELECT address, rcpt_to FROM recipients")) == [
        ("ann@example.com", ""),
        ("john.smith@example.com", "John.Smith@example.com"),
    ]
    now = datetime.now(UTC) + timedelta(seconds=1)
    claimed = await store.claim_due(now, 10, "A", LEASE)
    by_address = {d.address: d for d in claimed}
    assert by_address["john.smith@example.com"].rcpt_to == "John.Smith@example.com"
    assert by_address["john.smith@example.com"].wire_address == "John.Smith@example.com"
    assert by_address["ann@example.com"].rcpt_to == ""
    assert by_address["ann@example.com"].wire_address == "ann@example.com"

    await store.release_claims("A")
    again, contents = await store.claim_due_with_content(now, 10, "B", LEASE)
    assert {d.address: d.wire_address for d in again} == {
        "john.smith@example.com": "John.Smith@example.com",
        "ann@example.com": "ann@example.com",
    }
    assert contents == {"Q1": b"Subject: Case\r\n\r\nHi.\r\n"}


async def test_a_retry_in_another_case_is_a_duplicate_of_the_canonical_address(
    store: Store, backend: Backend
) -> None:
    """The Message-ID retried with ``JOHN.SMITH@`` is the same recipient: not queued again,
    and the first form given is the one kept."""
    first = _message("Q1", ("john.smith@example.com",), ("John.Smith@example.com",))
    await store.enqueue(first, WINDOW)
    retry = _message("Q2", ("john.smith@example.com",), ("JOHN.SMITH@example.com",))
    result = await store.enqueue(retry, WINDOW)
    assert result.queued == ()
    assert result.duplicates == ("john.smith@example.com",)
    assert backend.rows("SELECT rcpt_to FROM recipients") == [("John.Smith@example.com",)]


def test_as_given_finds_the_form_sent_for_each_canonical_address() -> None:
    given = ("MARY@Example.COM.", "John.Smith@example.com", "ann@example.com", "x@other.test")
    assert as_given("john.smith@example.com", given) == "John.Smith@example.com"
    assert as_given("mary@example.com", given) == "MARY@example.com"  # the domain as routed
    assert as_given("ann@example.com", given) == ""  # the same: nothing to keep
    assert as_given("john.smith@other.test", given) == ""  # another domain is not it
    assert as_given("zoë@example.com", ("Zoe\u0308@example.com",)) == "Zoe\u0308@example.com"
