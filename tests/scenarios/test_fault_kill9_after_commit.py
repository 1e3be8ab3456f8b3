"""kill -9 right after the store commit and before the ``250`` is written.

No test can hit that window by timing (the gateway writes the ``250`` microseconds after the
commit), so the gateway is started with the test harness's fault hook
``GATEWAY_TEST_FAULT=kill_after_commit`` (``tests/scenarios/gateway_hooks.py``; the
production code has no hook): the process SIGKILLs itself right after the commit. The client
sees the connection die without a reply and retries after the restart.

At most one duplicate: a retry carrying the same Message-ID is recognised within
``smtp.duplicate_window`` and not queued again (one delivery); a client that sends no
Message-ID gets a fresh one from the gateway each time, so the retry is a second message
(two deliveries: the one duplicate the contract allows).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.dns_server import FakeDns
from tests.scenarios.harness import crashable_gateway, send_message

RCPT = "erin@example.com"


@pytest.mark.parametrize(
    ("message_id", "expected_deliveries"),
    [("<mid-commit-1@sender.example>", 1), (None, 2)],
    ids=["same-message-id", "no-message-id"],
)
async def test_kill_9_after_commit_before_250_at_most_one_duplicate(
    fake_dns: FakeDns, tmp_path: Path, message_id: str | None, expected_deliveries: int
) -> None:
    async with crashable_gateway(fake_dns, tmp_path, "mx-commit.test") as crash:
        await crash.gateway.start(env={"GATEWAY_TEST_FAULT": "kill_after_commit"})
        code, _ = await send_message(crash.port, RCPT, message_id)
        assert code == -1  # no reply at all: the client does not know the outcome
        assert await crash.gateway.wait_exit() == -9
        # Committed before the crash: the message is in the queue, nothing delivered yet.
        assert crash.rows("SELECT status FROM recipients") == [("queued",)]
        assert crash.mx.messages == []

        await crash.gateway.start(env={})
        code, reply = await send_message(crash.port, RCPT, message_id)  # the client's retry
        assert code == 250, reply
        await crash.delivered_exactly(expected_deliveries)
        assert all(m.rcpt_tos == (RCPT,) for m in crash.mx.messages)
