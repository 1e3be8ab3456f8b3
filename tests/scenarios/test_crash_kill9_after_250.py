"""kill -9 right after the 250 while the destination is down: the restarted gateway delivers
the message exactly once when the destination comes back.

The gateway runs as a real subprocess (``python -m gateway serve``) so that SIGKILL is a
real crash: no shutdown sequence, no lease release, no flush beyond what the store made
durable before the ``250``.
"""

from __future__ import annotations

import asyncio
import smtplib
import sqlite3
from pathlib import Path

from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, free_port
from tests.scenarios.harness import GatewaySubprocess, write_config

RCPT = "carol@example.com"


def _send(port: int) -> tuple[int, bytes]:
    content = (
        f"From: App <app@sender.example>\r\nTo: {RCPT}\r\nSubject: Crash test\r\n"
        "Message-ID: <crash-1@sender.example>\r\n\r\nHello after a crash.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=10) as client:
        client.ehlo()
        client.mail("app@sender.example")
        code, _ = client.rcpt(RCPT)
        assert code == 250
        return client.data(content)


def _status(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return conn.execute(
            "SELECT status, attempts FROM recipients WHERE address = ?", (RCPT,)
        ).fetchall()


async def test_kill_9_after_250_then_restart_delivers_exactly_once(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    mx_port = free_port()
    smtp_port = free_port()
    mx = FakeMx(host="127.0.0.2", port=mx_port, hostname="mx-crash.test")
    fake_dns.add_a("mx-crash.test", "127.0.0.2")
    fake_dns.add_mx("example.com", 10, "mx-crash.test")
    config = write_config(
        fake_dns,
        tmp_path,
        mx_port,
        smtp_port,
        relay={"node_id": "crash-node", "retry_intervals": ["1s"], "lease": "10m"},
    )
    gateway = GatewaySubprocess(config, smtp_port, tmp_path)
    try:
        # The destination is down: nothing listens on its address yet.
        await gateway.start()
        code, reply = await asyncio.to_thread(_send, smtp_port)
        assert code == 250, reply
        gateway.kill()
        assert gateway.proc is not None
        assert gateway.proc.returncode == -9

        # The message survived the crash, accepted and not yet delivered.
        rows = _status(tmp_path / "gateway.db")
        assert len(rows) == 1
        assert rows[0][0] in ("queued", "deferred"), rows

        await gateway.start()
        mx.start()  # the destination comes back
        (received,) = await mx.wait_for(1, timeout=10)
        assert received.rcpt_tos == (RCPT,)
        assert b"Hello after a crash." in received.content

        # Exactly once: nothing more arrives after a few retry intervals.
        await asyncio.sleep(2.5)
        assert len(mx.messages) == 1
        async with asyncio.timeout(5):
            while _status(tmp_path / "gateway.db")[0][0] != "sent":
                await asyncio.sleep(0.05)
        ((status, attempts),) = _status(tmp_path / "gateway.db")
        assert status == "sent"
        assert attempts >= 1
    finally:
        gateway.terminate()
        mx.stop()
