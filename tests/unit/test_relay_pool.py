"""The relay's connection pool: the cap per destination, reuse, and a table that holds only
destinations in use (issue 11: the per-host dictionaries must not grow without bound)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiosmtplib import SMTP

from gateway.relay.pool import Connection, ConnectionPool, Key


class _FakeSmtp:
    def __init__(self) -> None:
        self.is_connected = True
        self.protocol: Any = None
        self.closed = 0

    def close(self) -> None:
        self.is_connected = False
        self.closed += 1


def _conn() -> Connection:
    return Connection(cast(SMTP, _FakeSmtp()), tls=False)


def _key(n: int) -> Key:
    return (f"mx{n}.example", 25, None, None)


async def test_a_destination_is_forgotten_once_nothing_is_open_or_waiting() -> None:
    pool = ConnectionPool(limit=2, idle_timeout=60)
    for n in range(50):
        assert await pool.checkout(_key(n)) is None
        pool.checkin(_key(n), None, reusable=False)
    assert len(pool) == 0


async def test_a_waiter_gets_the_slot_given_back_and_the_cap_holds() -> None:
    pool = ConnectionPool(limit=1, idle_timeout=60)
    assert await pool.checkout(_key(1)) is None
    second = asyncio.create_task(pool.checkout(_key(1)))
    await asyncio.sleep(0)
    assert not second.done()  # the one slot is taken
    conn = _conn()
    pool.checkin(_key(1), conn, reusable=True)
    assert await asyncio.wait_for(second, 1) is conn  # the idle connection, reused
    pool.checkin(_key(1), conn, reusable=False)
    assert len(pool) == 0
    assert cast(_FakeSmtp, conn.smtp).closed == 1


async def test_waiting_for_a_slot_is_not_an_error_and_a_cancelled_wait_leaves_nothing() -> None:
    """No fabricated ``451 Too many connections`` (issue 11): a caller waits for the slot."""
    pool = ConnectionPool(limit=1, idle_timeout=60)
    assert await pool.checkout(_key(1)) is None
    waiting = asyncio.create_task(pool.checkout(_key(1)))
    done, _ = await asyncio.wait({waiting}, timeout=0.2)
    assert not done  # still waiting, no error
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    pool.checkin(_key(1), None, reusable=False)
    assert len(pool) == 0


async def test_an_idle_connection_expires_and_close_quits_the_rest() -> None:
    pool = ConnectionPool(limit=2, idle_timeout=0.05)
    expiring = _conn()
    assert await pool.checkout(_key(1)) is None
    pool.checkin(_key(1), expiring, reusable=True)
    async with asyncio.timeout(2):
        while expiring.smtp.is_connected:
            await asyncio.sleep(0.01)
    assert len(pool) == 0
    kept = _conn()
    assert await pool.checkout(_key(2)) is None
    pool.checkin(_key(2), kept, reusable=True)
    quitted: list[Connection] = []

    async def quit_(conn: Connection) -> None:
        quitted.append(conn)

    await pool.close(quit_)
    assert quitted == [kept]
    assert len(pool) == 0
