"""kill -9 the moment the client has the ``250``, while the destination is up and the
relay is already talking to it: no loss, no duplicate.

The recipient is ``slow-*`` (the fake MX waits a second before answering RCPT), so the
crash lands before the relay's final dot: the transaction is abandoned, not ambiguous, and
the restarted gateway delivers exactly once. (With the destination down, the same crash is
``test_crash_kill9_after_250.py``; a crash after the final dot is
``test_fault_kill9_after_dot.py``.)
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes.dns_server import FakeDns
from tests.scenarios.harness import crashable_gateway, send_message

RCPT = "slow-fay@example.com"


async def test_kill_9_right_after_250_no_loss_no_duplicate(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    async with crashable_gateway(fake_dns, tmp_path, "mx-250.test") as crash:
        await crash.gateway.start()
        code, reply = await send_message(crash.port, RCPT, "<mid-250-1@sender.example>")
        crash.kill9()
        assert code == 250, reply
        assert crash.mx.messages == []
        (status,) = crash.rows("SELECT status FROM recipients")
        assert status[0] in ("queued", "deferred")

        await crash.gateway.start()
        await crash.delivered_exactly(1)
        (received,) = crash.mx.messages
        assert received.rcpt_tos == (RCPT,)
