"""kill -9 after the final dot to the destination, before the result is recorded: the
message is redelivered once (two deliveries in all: the one duplicate the contract allows
per crash) and the recipient ends ``sent``.

The fake MX keeps the ``hold-*`` message, signals ``dot_seen`` and holds its ``250`` back:
the gateway is killed in exactly the window where the destination has the message and
the gateway's store does not know it.
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

RCPT = "hold-gus@example.com"


async def test_kill_9_after_the_final_dot_redelivers_once(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    mx, smtp_port = published_mx(fake_dns, "mx-dot.test"), free_port()
    gateway = GatewaySubprocess(
        write_config(fake_dns, tmp_path, mx.port, smtp_port), smtp_port, tmp_path
    )
    db = tmp_path / "gateway.db"
    try:
        await gateway.start()
        code, reply = await send_message(smtp_port, RCPT, "<mid-dot-1@sender.example>")
        assert code == 250, reply
        assert await asyncio.to_thread(mx.dot_seen.wait, 10)
        gateway.kill()
        mx.release()
        assert len(mx.messages) == 1
        # Leased, not recorded: the store still has it pending.
        ((status, attempts),) = db_rows(db, "SELECT status, attempts FROM recipients")
        assert (status, attempts) == ("queued", 0)

        await gateway.start()
        await mx.wait_for(2, timeout=10)
        async with asyncio.timeout(10):
            while db_rows(db, "SELECT status FROM recipients") != [("sent",)]:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # past a retry interval: nothing more arrives
        assert len(mx.messages) == 2  # one duplicate, for the one crash
        assert mx.messages[0].content == mx.messages[1].content
    finally:
        gateway.terminate()
        mx.stop()
