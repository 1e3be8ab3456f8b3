"""Disk full on the store's file system (a small tmpfs mounted for the test): intake
answers ``452 4.3.1`` (or ``451 4.3.0``), never ``250``; the queue stays intact; delivery
and intake resume once space returns.

Needs root and ``mount -t tmpfs`` (the test skips, saying why, where that is refused). The
refused message is larger than the write-ahead log's current size, so it cannot fit in
space SQLite already holds: the store has to grow, and cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core import replies
from gateway.core.model import Status
from tests.scenarios.harness import GatewayHarness

SIZE = "8m"


@contextlib.contextmanager
def _tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
        timeout=10,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=10)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system is full."""
    chunk = b"\0" * 65536
    with path.open("wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError:
            pass
    # The last partial block: fill byte by byte-ish.
    with contextlib.suppress(OSError), path.open("ab") as out:
        for _ in range(64):
            out.write(b"\0" * 1024)
            out.flush()


async def _data_reply(harness: GatewayHarness, address: str, body: bytes) -> str:
    async with await harness.raw() as client:
        assert (await client.command("EHLO client.test")).startswith("250")
        assert (await client.command("MAIL FROM:<app@sender.example>")).startswith("250")
        assert (await client.command(f"RCPT TO:<{address}>")).startswith("250")
        assert (await client.command("DATA")).startswith("354")
        head = f"From: App <app@sender.example>\r\nTo: {address}\r\nSubject: Big\r\n\r\n"
        await client.send(head.encode() + body + b"\r\n.\r\n")
        return await client.reply(timeout=10)


async def test_disk_full_refuses_with_4xx_keeps_the_queue_and_recovers(
    harness: GatewayHarness, tmp_path: Path
) -> None:
    with _tmpfs(tmp_path / "fs") as fs:
        try:
            mx = harness.mx("127.0.0.2", "example.com")
            mx.set_down()
            await harness.start(
                store={"path": str(fs / "gateway.db")}, relay={"retry_intervals": ["1s"]}
            )
            assert await harness.send(["early@example.com"]) == {}
            await harness.wait_status("early@example.com", Status.DEFERRED)

            _fill(fs / "filler")
            wal = fs / "gateway.db-wal"
            size = wal.stat().st_size if wal.exists() else 0
            body = b"\r\n".join([b"x" * 998] * (size // 1000 + 256))
            reply = await _data_reply(harness, "late@example.com", body)
            assert reply in (str(replies.STORE_FULL), str(replies.STORE_FAILED)), reply
            assert not reply.startswith("250")
            # Full for a while: the relay's retries of the early message hit it too.
            await asyncio.sleep(2.5)

            # The queue is intact: the early message still waits, nothing half-written.
            (early,) = await harness.recipients("early@example.com")
            assert early.status in (Status.QUEUED, Status.DEFERRED)
            assert await harness.recipients("late@example.com") == []

            (fs / "filler").unlink()
            mx.set_down(down=False)
            await harness.wait_status("early@example.com", Status.SENT, timeout=10)
            reply = await _data_reply(harness, "late@example.com", body)
            assert reply.startswith("250 "), reply
            await harness.wait_status("late@example.com", Status.SENT, timeout=10)
            assert sorted(m.rcpt_tos for m in mx.messages) == [
                ("early@example.com",),
                ("late@example.com",),
            ]
        finally:
            await harness.stop()
