"""Destination faults: each one defers the recipient and retries it, never marks it sent,
never takes the gateway down.

One destination per test, misbehaving in one way:

* drops the connection after the final dot (``drop-*``): the outcome is unknown, so the
  message is retried later (at-least-once);
* never greets (``silent``): the greeting times out (``relay.command_timeout`` 1 s);
* greets with ``554`` (RFC 5321 §3.1 "no SMTP service here"): deferred, not bounced. A
  ``554`` greeting says nothing about the recipient; it is as often a rate limit, a
  blocklist or maintenance on one MX as a permanent refusal. We try the next MX and retry
  later; if it never changes, the recipient expires after ``relay.max_queue_lifetime``;
* answers ``421`` mid-session (at RCPT, then hangs up);
* answers with lines that are not SMTP replies;
* sends a reply whose continuation lines never end.

"Retried" is shown by a second attempt (``relay.retry_intervals`` is 1 s); "never a
crash" by the gateway's task still running and its relay still claiming work (a crashed
job would leave the row leased and never retried).
"""

from __future__ import annotations

import pytest

from gateway.core.model import Status
from gateway.core.ports import RecipientView
from tests.scenarios.harness import GatewayHarness
from tests.waiting import wait_until

FAST = {"command_timeout": "1s", "data_timeout": "1s", "retry_intervals": ["1s"]}


async def _deferred_twice(harness: GatewayHarness, address: str) -> RecipientView:
    """Wait (bounded) until ``address`` was deferred by at least two attempts."""
    refused = await harness.send([address])
    assert refused == {}, refused
    deadline = 12.0
    await harness.wait_status(address, Status.DEFERRED, timeout=deadline)

    async def tried_twice() -> RecipientView | None:
        (row,) = await harness.recipients(address)
        assert row.status is not Status.SENT, row
        return row if row.attempts >= 2 else None

    return await wait_until(tried_twice, deadline, what=f"{address} tried twice")


def _alive(harness: GatewayHarness) -> None:
    assert harness.task is not None
    assert not harness.task.done(), "the gateway's run() ended"
    assert harness.gw is not None
    assert harness.gw.relay.running


@pytest.mark.parametrize(
    ("mode", "address", "expected"),
    [
        ("normal", "drop-hal@example.com", "lost after the final dot"),
        ("silent", "ida@example.com", "Timed out waiting"),
        ("greeting554", "jon@example.com", "refused service at the greeting: 554"),
        ("normal", "421-kim@example.com", "421"),
        ("malformed", "lea@example.com", "Malformed reply"),
        ("endless", "max@example.com", "Response too long"),
    ],
    ids=["drop-after-dot", "timeout", "greeting-554", "421-mid-session", "malformed", "endless"],
)
async def test_destination_fault_defers_and_retries(
    harness: GatewayHarness, mode: str, address: str, expected: str
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    mx.mode = mode
    await harness.start(relay=FAST)

    row = await _deferred_twice(harness, address)

    assert row.status is Status.DEFERRED
    assert row.last_reply.startswith("4"), row.last_reply
    assert expected in row.last_reply, row.last_reply
    assert mx.messages == []
    _alive(harness)
    # Nothing recorded it as sent, in any event.
    assert all(e.type.value != "sent" for e in await harness.events(address))


async def test_greeting_554_on_the_first_mx_falls_through_to_the_next(
    harness: GatewayHarness,
) -> None:
    refusing = harness.mx("127.0.0.2", "example.com", pref=10)
    refusing.mode = "greeting554"
    working = harness.mx("127.0.0.3", "example.com", pref=20)
    await harness.start(relay=FAST)

    assert await harness.send(["ned@example.com"]) == {}
    await working.wait_for(1, timeout=10)
    await harness.wait_status("ned@example.com", Status.SENT)
    assert refusing.connections >= 1
    assert refusing.messages == []
