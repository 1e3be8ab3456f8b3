"""Open SMTP connections kept for reuse, per destination (host, port, server name, AUTH
user), with a cap on how many are open to each at once.

Owns: the idle connections and their idle timers, the count of connections open (idle, in
use or being opened) per destination against ``relay.per_destination_concurrency``, and the
queue of callers waiting for a slot. A destination with nothing open and nobody waiting is
forgotten, so the table holds only destinations in use. Does not own: opening or speaking
SMTP on a connection (``relay.client``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiosmtplib import SMTP

from gateway.relay.wire import NET_ERRORS

Key = tuple[str, int, str | None, str | None]  # host, port, server name, auth user


@dataclass(eq=False, slots=True)
class Connection:
    """One SMTP session after EHLO (and STARTTLS, AUTH): reusable for the next message."""

    smtp: SMTP
    tls: bool
    messages: int = 0
    broken: bool = False
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False, slots=True)
class _Destination:
    idle: deque[Connection] = field(default_factory=deque)
    open: int = 0  # idle + in use + being opened; bounded by the pool's limit
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class ConnectionPool:
    """Connections per destination, at most ``limit`` open to each.

    Waiting for a slot is never an outcome: ``checkout`` waits until a connection to the
    destination is checked in (every session is bounded by the client's timeouts), and the
    relay's ready queues (``relay.sites``) keep each site within its own limit, so this cap
    only guards one MX address shared by several sites.

    Args:
        limit: connections open to one destination at once.
        idle_timeout: seconds an idle connection is kept.
    """

    def __init__(self, limit: int, idle_timeout: float) -> None:
        self._limit = limit
        self._idle_timeout = idle_timeout
        self._destinations: dict[Key, _Destination] = {}
        self._closed = False

    def __len__(self) -> int:
        """Destinations with a connection open or a caller waiting."""
        return len(self._destinations)

    async def checkout(self, key: Key) -> Connection | None:
        """An idle connection, or ``None`` with a slot reserved to open a new one; waits
        for a slot while ``limit`` connections to the destination are open."""
        dest = self._destinations.setdefault(key, _Destination())
        try:
            while True:
                while dest.idle:
                    conn = dest.idle.pop()  # most recently used: most likely alive
                    _cancel_timer(conn)
                    if conn.smtp.is_connected:
                        return conn
                    dest.open -= 1
                    abort(conn)
                if dest.open < self._limit:
                    dest.open += 1
                    return None
                waiter = asyncio.get_running_loop().create_future()
                dest.waiters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        _wake(dest)  # we were woken but will not take the slot: pass it on
                    raise
                finally:
                    with contextlib.suppress(ValueError):
                        dest.waiters.remove(waiter)
        except BaseException:
            self._forget_if_unused(key, dest)
            raise

    def checkin(self, key: Key, conn: Connection | None, *, reusable: bool) -> None:
        """Give back the slot ``checkout`` gave: ``conn`` is kept idle when ``reusable``,
        else closed (``None``: opening it failed)."""
        dest = self._destinations[key]
        if conn is not None and reusable and not self._closed and conn.smtp.is_connected:
            loop = asyncio.get_running_loop()
            conn.timer = loop.call_later(self._idle_timeout, self._expire, key, conn)
            dest.idle.append(conn)
        else:
            if conn is not None:
                abort(conn)
            dest.open -= 1
        _wake(dest)
        self._forget_if_unused(key, dest)

    async def close(self, quit: Callable[[Connection], Awaitable[None]]) -> None:
        """Close every idle connection with ``quit``; connections in use are closed when
        they are checked in."""
        self._closed = True
        for key, dest in list(self._destinations.items()):
            while dest.idle:
                conn = dest.idle.popleft()
                _cancel_timer(conn)
                dest.open -= 1
                await quit(conn)
            _wake(dest)
            self._forget_if_unused(key, dest)

    def _expire(self, key: Key, conn: Connection) -> None:
        dest = self._destinations.get(key)
        if dest is None or conn not in dest.idle:
            return
        dest.idle.remove(conn)
        dest.open -= 1
        conn.timer = None
        abort(conn)
        _wake(dest)
        self._forget_if_unused(key, dest)

    def _forget_if_unused(self, key: Key, dest: _Destination) -> None:
        unused = dest.open == 0 and not dest.waiters and not dest.idle
        if unused and self._destinations.get(key) is dest:
            del self._destinations[key]


def abort(conn: Connection) -> None:
    """Close without waiting: send QUIT if we can, then drop the transport."""
    _cancel_timer(conn)
    protocol = conn.smtp.protocol
    if protocol is not None and conn.smtp.is_connected:
        with contextlib.suppress(*NET_ERRORS):
            protocol.write(b"QUIT\r\n")
    conn.smtp.close()


def _cancel_timer(conn: Connection) -> None:
    if conn.timer is not None:
        conn.timer.cancel()
        conn.timer = None


def _wake(dest: _Destination) -> None:
    while dest.waiters:
        waiter = dest.waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return
