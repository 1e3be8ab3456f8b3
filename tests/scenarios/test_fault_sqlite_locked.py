"""SQLite locked by another process for longer than ``store.busy_timeout``: intake answers
``451 4.3.0`` at DATA, writes no partial rows, and works again once the lock is released.

The other process holds ``BEGIN EXCLUSIVE`` on the store's file (in WAL mode readers carry
on, so the RCPT checks still run; every writer waits ``busy_timeout`` and gives up).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from gateway.core import replies
from gateway.core.model import Status
from tests.scenarios.harness import GatewayHarness, db_rows

_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
print("released", flush=True)
"""

COUNTS = (
    "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM recipients),"
    " (SELECT count(*) FROM events)"
)


async def _data_reply(harness: GatewayHarness, address: str) -> str:
    async with await harness.raw() as client:
        assert (await client.command("EHLO client.test")).startswith("250")
        assert (await client.command("MAIL FROM:<app@sender.example>")).startswith("250")
        assert (await client.command(f"RCPT TO:<{address}>")).startswith("250")
        assert (await client.command("DATA")).startswith("354")
        head = f"From: App <app@sender.example>\r\nTo: {address}\r\nSubject: Locked\r\n\r\n"
        await client.send(head.encode() + b"Hello.\r\n.\r\n")
        return await client.reply(timeout=10)


async def test_store_locked_beyond_busy_timeout_answers_451_and_recovers(
    harness: GatewayHarness,
) -> None:
    mx = harness.mx("127.0.0.2", "example.com")
    # The lock is taken while the relay starts up (it releases its old leases first, a
    # write): a locked store at start-up must not stop the relay or the gateway.
    await harness.start(store={"busy_timeout": "300ms"}, relay={"retry_intervals": ["1s"]})
    db = harness.tmp / "gateway.db"
    before = db_rows(db, COUNTS)

    locker = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdin is not None
        line = await asyncio.wait_for(asyncio.to_thread(locker.stdout.readline), 10)
        assert line == b"locked\n"

        reply = await _data_reply(harness, "ruth@example.com")
        assert reply == str(replies.STORE_FAILED), reply
        assert db_rows(db, COUNTS) == before  # no partial rows

        locker.stdin.write(b"go\n")
        locker.stdin.flush()
        line = await asyncio.wait_for(asyncio.to_thread(locker.stdout.readline), 10)
        assert line == b"released\n"
    finally:
        locker.kill()
        locker.wait(10)
        for pipe in (locker.stdin, locker.stdout):
            if pipe is not None:
                pipe.close()

    assert harness.task is not None
    assert not harness.task.done(), "the gateway stopped"
    reply = await _data_reply(harness, "ruth@example.com")
    assert reply.startswith("250 "), reply
    await harness.wait_status("ruth@example.com", Status.SENT, timeout=10)
    assert len(mx.messages) == 1
