"""kill -9 of a real gateway process while the client is still sending DATA: nothing is
queued (the transaction never committed); the client's retry after the restart is accepted
and the message is delivered exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.harness import (
    GatewaySubprocess,
    RawClient,
    db_rows,
    published_mx,
    send_message,
    write_config,
)

RCPT = "dora@example.com"


async def test_kill_9_during_data_queues_nothing_and_the_retry_is_delivered_once(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    mx, smtp_port = published_mx(fake_dns, "mx-data.test"), free_port()
    gateway = GatewaySubprocess(
        write_config(fake_dns, tmp_path, mx.port, smtp_port), smtp_port, tmp_path
    )
    db = tmp_path / "gateway.db"
    try:
        await gateway.start()
        client = await RawClient.connect(smtp_port)
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
            await asyncio.sleep(0.2)  # the gateway has read the partial content
            gateway.kill()
            assert gateway.proc is not None
            assert gateway.proc.returncode == -9
            assert await client.closed()

        assert db_rows(db, "SELECT count(*) FROM messages") == [(0,)]
        assert db_rows(db, "SELECT count(*) FROM recipients") == [(0,)]

        await gateway.start()
        code, reply = await send_message(smtp_port, RCPT, "<mid-data-1@sender.example>")
        assert code == 250, reply
        (received,) = await mx.wait_for(1, timeout=10)
        assert received.rcpt_tos == (RCPT,)
        async with asyncio.timeout(10):
            while db_rows(db, "SELECT status FROM recipients WHERE address = ?", (RCPT,)) != [
                ("sent",)
            ]:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # past a retry interval: nothing more arrives
        assert len(mx.messages) == 1
    finally:
        gateway.terminate()
        mx.stop()
