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
from tests.scenarios.harness import crashable_gateway, send_message

RCPT = "hold-gus@example.com"


async def test_kill_9_after_the_final_dot_redelivers_once(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    async with crashable_gateway(fake_dns, tmp_path, "mx-dot.test") as crash:
        await crash.gateway.start()
        code, reply = await send_message(crash.port, RCPT, "<mid-dot-1@sender.example>")
        assert code == 250, reply
        assert await asyncio.to_thread(crash.mx.dot_seen.wait, 10)
        crash.kill9()
        crash.mx.release()
        assert len(crash.mx.messages) == 1
        # Leased, not recorded: the store still has it pending.
        ((status, attempts),) = crash.rows("SELECT status, attempts FROM recipients")
        assert (status, attempts) == ("queued", 0)

        await crash.gateway.start()
        await crash.delivered_exactly(2)  # one duplicate, for the one crash
        assert crash.mx.messages[0].content == crash.mx.messages[1].content
