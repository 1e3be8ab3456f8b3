"""kill -9 at the last two former gaps of issue 13, item 4: both or neither.

The relay's bounce notice to the sender was queued by a separate enqueue after the outcome
that caused it, and the admin API's send-test queued its message and then wrote the audit
entry in a second commit. Both are now one transaction: the notice rides on the outcomes
(``Outcome.notice``, queued by ``record_outcomes``), and send-test's audit entry is built
inside the enqueue's write (``enqueue(..., audit=...)``). The gateway runs as a subprocess
with a test hook (``tests/scenarios/gateway_hooks.py``) that SIGKILLs it inside that
transaction, after the second write and before the commit (``kill_mid_*``: neither may
stay), or right after the commit (``kill_after_*``: both must). The SQLite file is then
read from the outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.harness import _port_open, crashable_gateway, send_message
from tests.waiting import wait_until

SENDER = "app@sender.example"
TOKEN = "kill9-admin-token-issue13-0123456789"


def _enable_bounce_notices(db: Path) -> None:
    """The default tenant asks for bounce notices (as ``PATCH /api/v1/tenants`` sets it)."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn, conn:
        conn.execute("UPDATE tenants SET bounce_notice = 1 WHERE name = 'default'")


@pytest.mark.parametrize(
    ("fault", "kept"), [("kill_mid_notice", 0), ("kill_after_notice", 1)], ids=str
)
async def test_kill_9_at_the_bounce_notice_leaves_both_or_neither(
    fake_dns: FakeDns, tmp_path: Path, fault: str, kept: int
) -> None:
    rcpt = "permfail-notice@example.com"  # 550 5.1.1: a final failure
    async with crashable_gateway(fake_dns, tmp_path, "mx-notice.test") as crash:
        await crash.gateway.start()  # creates the store and the default tenant
        crash.gateway.terminate()
        _enable_bounce_notices(crash.db)
        await crash.gateway.start(env={"GATEWAY_TEST_FAULT": fault})
        code, reply = await send_message(crash.port, rcpt, "<notice-kill@sender.example>", SENDER)
        assert code == 250, reply
        # The relay records the bounce with the notice to the sender: the write is killed.
        assert await crash.gateway.wait_exit(timeout=15) == -9, crash.gateway.output()

        bounced = crash.rows(
            "SELECT id FROM events WHERE address = ? AND type = 'bounced'", (rcpt,)
        )
        notices = crash.rows(
            "SELECT m.subject, r.address FROM messages m JOIN recipients r"
            " ON r.queue_id = m.queue_id WHERE m.mail_from = ''",
        )
        assert len(bounced) == kept
        assert notices == [("Undelivered Mail Returned to Sender", SENDER)] * kept
        status = crash.rows("SELECT status FROM recipients WHERE address = ?", (rcpt,))
        assert (status == [("bounced",)]) is bool(kept), status


@pytest.mark.parametrize(
    ("fault", "kept"), [("kill_mid_send_test", 0), ("kill_after_commit", 1)], ids=str
)
async def test_kill_9_at_send_test_leaves_both_or_neither(
    fake_dns: FakeDns, tmp_path: Path, fault: str, kept: int
) -> None:
    to = "tester@example.com"
    admin_port = free_port()
    async with crashable_gateway(
        fake_dns,
        tmp_path,
        "mx-send-test.test",
        admin={"listen": f"127.0.0.1:{admin_port}", "tokens": [TOKEN]},
    ) as crash:
        await crash.gateway.start(env={"GATEWAY_TEST_FAULT": fault})
        await wait_until(
            lambda: asyncio.to_thread(_port_open, admin_port), 10, what="the admin listener up"
        )
        async with httpx.AsyncClient(timeout=10) as client:
            with pytest.raises(httpx.TransportError):  # killed before its answer
                await client.post(
                    f"http://127.0.0.1:{admin_port}/api/v1/send-test",
                    json={"to": to},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
        assert await crash.gateway.wait_exit() == -9, crash.gateway.output()

        messages = crash.rows("SELECT queue_id FROM messages WHERE client_address = 'admin-api'")
        audits = crash.rows("SELECT target, detail FROM admin_audit WHERE action = 'send_test'")
        assert len(messages) == len(audits) == kept
        if kept:
            # The entry names the message it queued and where it went.
            assert audits[0][0] == messages[0][0]
            assert to in audits[0][1]
