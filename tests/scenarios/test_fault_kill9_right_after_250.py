"""kill -9 the moment the client has the ``250``, while the destination is up and the
relay is already talking to it: no loss, no duplicate.

The recipient is ``slow-*`` (the fake MX waits a second before answering RCPT), so the
crash lands before the relay's final dot: the transaction is abandoned, not ambiguous, and
the restarted gateway delivers exactly once. (With the destination down, the same crash is
``test_crash_kill9_after_250.py``; a crash after the final dot is
``test_fault_kill9_after_dot.py``.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.harness import (
    GatewaySubprocess,
    db_rows,
    published_mx,
    send_message,
    write_config,
)

RCPT = "slow-fay@example.com"


async def test_kill_9_right_after_250_no_loss_no_duplicate(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    mx, smtp_port = published_mx(fake_dns, "mx-250.test"), free_port()
    gateway = GatewaySubprocess(
        write_config(fake_dns, tmp_path, mx.port, smtp_port), smtp_port, tmp_path
    )
    db = tmp_path / "gateway.db"
    try:
        await gateway.start()
        code, reply = await send_message(smtp_port, RCPT, "<mid-250-1@sender.example>")
        gateway.kill()
        assert code == 250, reply
        assert mx.messages == []
        (status,) = db_rows(db, "SELECT status FROM recipients")
        assert status[0] in ("queued", "deferred")

        await gateway.start()
        (received,) = await mx.wait_for(1, timeout=10)
        assert received.rcpt_tos == (RCPT,)
        async with asyncio.timeout(10):
            while db_rows(db, "SELECT status FROM recipients") != [("sent",)]:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # past a retry interval: nothing more arrives
        assert len(mx.messages) == 1
    finally:
        gateway.terminate()
        mx.stop()
