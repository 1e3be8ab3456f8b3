"""kill -9 right after the 250 while the destination is down: the restarted gateway delivers
the message exactly once when the destination comes back.

The gateway runs as a real subprocess (``python -m gateway serve``) so that SIGKILL is a
real crash: no shutdown sequence, no lease release, no flush beyond what the store made
durable before the ``250``.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from tests.fakes.dns_server import FakeDns
from tests.scenarios.harness import crashable_gateway

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


async def test_kill_9_after_250_then_restart_delivers_exactly_once(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    status = "SELECT status, attempts FROM recipients WHERE address = ?"
    # The destination is down: nothing listens on its address yet.
    async with crashable_gateway(
        fake_dns, tmp_path, "mx-crash.test", mx_up=False, relay={"node_id": "crash-node"}
    ) as crash:
        await crash.gateway.start()
        code, reply = await asyncio.to_thread(_send, crash.port)
        assert code == 250, reply
        crash.kill9()

        # The message survived the crash, accepted and not yet delivered.
        rows = crash.rows(status, (RCPT,))
        assert len(rows) == 1
        assert rows[0][0] in ("queued", "deferred"), rows

        await crash.gateway.start()
        crash.mx.start()  # the destination comes back
        # Exactly once: nothing more arrives after a few retry intervals.
        await crash.delivered_exactly(1, settle=2.5)
        (received,) = crash.mx.messages
        assert received.rcpt_tos == (RCPT,)
        assert b"Hello after a crash." in received.content
        ((state, attempts),) = crash.rows(status, (RCPT,))
        assert state == "sent"
        assert attempts >= 1
