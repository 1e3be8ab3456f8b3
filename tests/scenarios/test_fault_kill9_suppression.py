"""kill -9 at the former gaps between a suppression and its event (issue 13, item 4).

The auto-block policy and an opt-out by e-mail each wrote the suppression and its
``suppressed`` event in two commits, so a crash between them left one without the other.
Both are now one transaction: ``Store.suppress_with_event`` (an opt-out), and the relay's
``record_outcomes`` with the policy's suppression (``Outcome.suppress``). The gateway runs as a
subprocess with a test hook (``tests/scenarios/gateway_hooks.py``) that SIGKILLs it inside
that transaction, after the event's insert and before the commit (``kill_mid_suppression``:
neither may stay), or right after the commit (``kill_after_suppression``: both must). The
SQLite file is then read from the outside.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core import verp
from tests.fakes.dns_server import FakeDns
from tests.scenarios.harness import SECRET, crashable_gateway, db_rows, send_content, send_message

BOUNCE_DOMAIN = "bounces.gateway.test"
# fault -> how many (suppression, suppressed event) rows the file keeps: both or neither
FAULTS = {"kill_mid_suppression": 0, "kill_after_suppression": 1}


def _rows(db: Path, address: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    suppressions = db_rows(
        db, "SELECT reason, event_id FROM suppressions WHERE address = ?", (address,)
    )
    events = db_rows(
        db, "SELECT id, reason FROM events WHERE address = ? AND type = 'suppressed'", (address,)
    )
    return suppressions, events


@pytest.mark.parametrize(("fault", "kept"), FAULTS.items(), ids=list(FAULTS))
async def test_kill_9_at_the_policys_suppression_leaves_both_or_neither(
    fake_dns: FakeDns, tmp_path: Path, fault: str, kept: int
) -> None:
    # 550 5.1.1: a nonexistent address, which the policy suppresses at once.
    rcpt = "permfail-gone@example.com"
    async with crashable_gateway(fake_dns, tmp_path, "mx-policy.test") as crash:
        await crash.gateway.start(env={"GATEWAY_TEST_FAULT": fault})
        code, reply = await send_message(crash.port, rcpt, "<policy-kill@sender.example>")
        assert code == 250, reply
        # The relay records the bounce with the policy's suppression: the write is killed.
        assert await crash.gateway.wait_exit(timeout=15) == -9, crash.gateway.output()

        # The outcome, the suppression and its event are one transaction (the relay's
        # ``record_outcomes``): all of them, or none (the recipient is tried again).
        bounced = crash.rows(
            "SELECT id FROM events WHERE address = ? AND type = 'bounced'", (rcpt,)
        )
        assert len(bounced) == kept
        status = crash.rows("SELECT status FROM recipients WHERE address = ?", (rcpt,))
        assert (status == [("bounced",)]) is bool(kept), status
        suppressions, events = _rows(crash.db, rcpt)
        assert len(suppressions) == len(events) == kept
        if kept:
            # The suppression names the bounce that caused it; the event says why.
            assert suppressions == [("nonexistent_address", bounced[0][0])]
            assert [reason for _, reason in events] == ["nonexistent_address"]


async def _mail_to(port: int, to: str, sender: str) -> tuple[int, bytes]:
    """Mail "SAIR" to ``to`` the way a recipient's MTA does, from outside a trusted network."""
    content = f"From: <{sender}>\r\nTo: {to}\r\nSubject: SAIR\r\n\r\nSAIR\r\n".encode()

    return await send_content(port, sender, to, content, "mta.remote.test", "127.0.0.9")


@pytest.mark.parametrize(("fault", "kept"), FAULTS.items(), ids=list(FAULTS))
async def test_kill_9_at_an_opt_out_by_mail_leaves_both_or_neither(
    fake_dns: FakeDns, tmp_path: Path, fault: str, kept: int
) -> None:
    address = "henry@example.com"
    token = verp.make_unsubscribe_token("default", address, SECRET.encode())
    async with crashable_gateway(
        fake_dns, tmp_path, "mx-optout.test", smtp={"trusted_networks": ["127.0.0.1/32"]}
    ) as crash:
        await crash.gateway.start(env={"GATEWAY_TEST_FAULT": fault})
        code, _ = await _mail_to(crash.port, f"u+{token}@{BOUNCE_DOMAIN}", address)
        assert code == -1  # killed before its reply
        assert await crash.gateway.wait_exit() == -9, crash.gateway.output()

        suppressions, events = _rows(crash.db, address)
        assert len(suppressions) == len(events) == kept
        if kept:
            assert suppressions == [("opt_out", events[0][0])]
            assert [reason for _, reason in events] == ["opt_out"]
