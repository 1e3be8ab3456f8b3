"""Nothing slow on the event loop: a 5 MB message signed with DKIM, relayed, and a 5 MB DSN
about it read back, with no callback of the gateway's loop taking 50 ms or more.

The gateway runs as its own process (``serve``) through the test hooks
(``gateway_hooks.py``): asyncio's debug mode with ``slow_callback_duration = 0.05``, each
"Executing … took …" warning of the ``asyncio`` logger written to a file with the CPU time
the loop's thread spent in that callback. Only the gateway's own work on the loop is
judged: the test's clients, fake MX and DNS, which move and parse the same megabytes, run
in the test process, and a warning whose callback had less than 50 ms of the loop thread's
CPU was slow because other processes had the cores (the suite and anything beside it on a
2-core machine) or a worker thread had the interpreter for its slice (the reason why the
DKIM body is hashed in pieces); those are shown, not judged. Judged from the moment a first,
small message has been delivered:
start-up is not (reading the bounce rules takes ~0.3 s, before the SMTP listener opens; the
webhook client's TLS set-up ~40 ms, once, after).

Where the time would go without the threads (measured on the 2-core test machine): parsing
the DSN (``bounce_sink``: 65-90 ms for this one, whose notice is base64 and quotes the
original), hashing the body and signing (``signing``: ~40 ms for 5 MB; the body is hashed in
64 KB pieces, so the worker thread gives the interpreter back to the loop between them),
preparing the DATA stream (``relay.client``), reading DATA (``smtp_in.server`` hands it to
aiosmtpd in 32 KB slices) and the store's look-ups (the SQLite reader's thread). What stays
on the loop for a 5 MB message, 10-30 ms in a step, is aiosmtpd's end of DATA and copies.
``test_loop_thread_stays_free.py`` checks without timing that signing, parsing and queries
never run on the loop's thread.
"""

from __future__ import annotations

import asyncio
import base64
import os
import smtplib
import subprocess
import sys
from pathlib import Path

import dkim

from gateway.mail.dkim import DkimKey, public_record
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.gateway_hooks import CPU_MARK, SLOW_CALLBACK_SECONDS, SLOW_CALLBACKS
from tests.scenarios.harness import (
    ROOT,
    GatewaySubprocess,
    db_rows,
    make_dsn,
    published_mx,
    send_message,
    write_config,
)
from tests.waiting import wait_until

RCPT = "erin@example.com"
THRESHOLD = 0.05  # seconds: asyncio's slow_callback_duration in the gateway (hook default)
SENDER = "app@sender.example"
SIZE = 5 * 1024 * 1024
QUOTED = 3_700_000  # how much of the message the DSN quotes: 5 MB once in base64
# Only 127.0.0.1 relays without AUTH: the DSN comes from 127.0.0.9, as from a remote MTA.
TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}


def _attachment(size: int) -> bytes:
    """``size`` bytes of base64 lines (76 characters and CRLF), like a PDF attachment."""
    return base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")


def _big_message() -> bytes:
    return (
        (
            f"From: App <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: Your statement\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="PART"\r\n\r\n'
            "--PART\r\nContent-Type: text/plain\r\n\r\nYour statement is attached.\r\n"
            "--PART\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + _attachment(SIZE)
        + b"--PART--\r\n"
    )


def _big_dsn(return_path: str, original: bytes) -> bytes:
    """An RFC 3464 DSN whose notice, base64 in UTF-8 as some servers send it, quotes the
    start of the original message: text the parser has to decode and read."""
    notice = (
        b"This is the mail system at host mx.remote.test.\r\n\r\n"
        b"I'm sorry to have to inform you that your message could not\r\n"
        b"be delivered to one or more recipients.\r\n\r\n"
        b"<erin@example.com>: host mx.remote.test said: 550 5.1.1 User unknown\r\n\r\n"
        b"----- Original message -----\r\n\r\n" + original[:QUOTED]
    )
    plain = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    encoded = (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    dsn = make_dsn(return_path, RCPT)
    start = dsn.index(plain)
    end = dsn.index(b"--BOUNDARY", start)
    body = base64.encodebytes(notice).replace(b"\n", b"\r\n")
    return dsn[:start] + encoded + body + dsn[end:]


def _smtp(port: int, sender: str, rcpt: str, content: bytes, source: str) -> tuple[int, bytes]:
    with smtplib.SMTP(
        "127.0.0.1", port, local_hostname="client.test", timeout=30, source_address=(source, 0)
    ) as client:
        client.ehlo()
        client.mail(sender)
        code, text = client.rcpt(rcpt)
        if code != 250:
            return code, text
        return client.data(content)


def _dkim_keygen(config: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "dkim", "keygen",
         "sender.example", "s1", "--tenant", "default"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
        capture_output=True, timeout=60,
    )  # fmt: skip


def _slow_callbacks(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _gateways_own(line: str) -> bool:
    """A warning the gateway's own work on the loop caused: its thread had the CPU that long."""
    return float(line.rpartition(CPU_MARK)[2]) >= THRESHOLD


async def _wait_for_status(db: Path, status: str, timeout: float = 30) -> None:
    sql = "SELECT status FROM recipients WHERE address = ?"
    await wait_until(lambda: db_rows(db, sql, (RCPT,)) == [(status,)], timeout, what=status)


async def test_a_5_mb_signed_message_and_a_5_mb_dsn_leave_no_slow_callback(
    fake_dns: FakeDns, tmp_path: Path
) -> None:
    mx, smtp_port = published_mx(fake_dns, "mx-big.test"), free_port()
    config = write_config(fake_dns, tmp_path, mx.port, smtp_port, smtp=TRUSTED)
    db = tmp_path / "gateway.db"
    slow = tmp_path / "slow-callbacks.txt"
    gateway = GatewaySubprocess(config, smtp_port, tmp_path, env={SLOW_CALLBACKS: str(slow)})
    message = _big_message()
    try:
        await gateway.start(env={})  # a first start makes the default tenant...
        gateway.terminate()
        await asyncio.to_thread(_dkim_keygen, config)  # ...that the key is stored for
        await gateway.start(env={SLOW_CALLBACKS: str(slow)})
        code, reply = await send_message(smtp_port, "warm-up@example.com", "<warm-up@app>")
        assert code == 250, reply
        await mx.wait_for(1, timeout=30)
        start_up = len(_slow_callbacks(slow))

        code, reply = await asyncio.to_thread(_smtp, smtp_port, SENDER, RCPT, message, "127.0.0.1")
        assert code == 250, reply
        received = (await mx.wait_for(2, timeout=30))[1]
        await _wait_for_status(db, "sent")

        bounce = _big_dsn(received.mail_from, message)
        assert len(bounce) > 5_000_000
        code, reply = await asyncio.to_thread(
            _smtp, smtp_port, "", received.mail_from, bounce, "127.0.0.9"
        )
        assert code == 250, reply
        await _wait_for_status(db, "bounced")
    finally:
        gateway.terminate()
        mx.stop()

    # The message went out signed with the tenant's key, as stored by `gateway dkim keygen`.
    assert received.content.startswith(b"DKIM-Signature: ")
    ((domain, selector, algorithm, pem),) = db_rows(
        db, "SELECT domain, selector, algorithm, private_key_pem FROM dkim_keys"
    )
    record = public_record(DkimKey(domain, selector, pem, algorithm)).encode()
    assert dkim.verify(received.content, dnsfunc=lambda name, timeout=5: record)
    # The DSN was read: the recipient bounced on its report.
    assert db_rows(db, "SELECT address FROM events WHERE type = 'report'") == [(RCPT,)]
    warned = _slow_callbacks(slow)[start_up:]
    assert [line for line in warned if _gateways_own(line)] == [], "\n" + "\n".join(warned)


async def test_the_watch_reports_slow_callbacks(fake_dns: FakeDns, tmp_path: Path) -> None:
    """The hook itself: with a threshold no callback can meet, every one is reported."""
    mx, smtp_port = published_mx(fake_dns, "mx-watch.test"), free_port()
    config = write_config(fake_dns, tmp_path, mx.port, smtp_port)
    slow = tmp_path / "slow-callbacks.txt"
    env = {SLOW_CALLBACKS: str(slow), SLOW_CALLBACK_SECONDS: "0.000001"}
    gateway = GatewaySubprocess(config, smtp_port, tmp_path, env=env)
    try:
        await gateway.start()
        code, reply = await send_message(smtp_port, RCPT, "<watch-1@sender.example>")
        assert code == 250, reply
    finally:
        gateway.terminate()
        mx.stop()
    lines = _slow_callbacks(slow)
    assert lines
    assert all(line.startswith("Executing ") and " took " in line for line in lines)
    assert all(float(line.rpartition(CPU_MARK)[2]) >= 0 for line in lines)
