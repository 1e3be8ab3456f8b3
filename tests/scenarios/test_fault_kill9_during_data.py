"""kill -9 of a real gateway process while the client is still sending DATA: nothing is
queued (the transaction never committed); the client's retry after the restart is accepted
and the message is delivered exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fakes.dns_server import FakeDns
from tests.scenarios.harness import RawClient, crashable_gateway, send_message

RCPT = "dora@example.com"


async def test_kill_9_during_data_queues_nothing_and_the_retry_is_delivered_once(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    async with crashable_gateway(fake_dns, tmp_path, "mx-data.test") as crash:
        await crash.gateway.start()
        client = await RawClient.connect(crash.port)
        async with client:
            assert (await client.reply()).startswith("220 ")
            assert (await client.command("EHLO client.test")).startswith("250")
            assert (await client.command("MAIL FROM:<app@sender.example>")).startswith("250")
            assert (await client.command(f"RCPT TO:<{RCPT}>")).startswith("250")
            assert (await client.command("DATA")).startswith("354")
            await client.send(
                b"From: App <app@sender.example>\r\nTo: " + RCPT.encode() + b"\r\n"
                b"Message-ID: <mid-data-1@sender.example>\r\nSubject: half\r\n\r\nFirst half"
            )
            # The gateway reads the partial content meanwhile: it sends nothing in DATA until
            # the final dot, so there is no signal to wait for, and a kill before the read
            # must leave the same nothing behind.
            await asyncio.sleep(0.2)
            crash.kill9()
            assert await client.closed()

        assert crash.rows("SELECT count(*) FROM messages") == [(0,)]
        assert crash.rows("SELECT count(*) FROM recipients") == [(0,)]

        await crash.gateway.start()
        code, reply = await send_message(crash.port, RCPT, "<mid-data-1@sender.example>")
        assert code == 250, reply
        await crash.delivered_exactly(1)
        (received,) = crash.mx.messages
        assert received.rcpt_tos == (RCPT,)
