"""The shared store for several nodes: one PostgreSQL database through an asyncpg pool.

Owns: the schema's PostgreSQL dialect and its migrations, durable commits, claims with
leases that survive a node's death, the fencing of stale results, the ``gateway_queue``
notification that wakes every node's relay, and the translation of asyncpg and OS errors
into ``StoreError``. Does not own: what the rows mean (``core``), nor when things are
written (intake, relay). Behaves method by method like ``store.sqlite``.

Durability: ``synchronous_commit = on`` on every connection, so a commit has reached the
WAL on disk before ``COMMIT`` returns and a ``250`` always follows its own flush. Each
enqueue is one transaction; PostgreSQL groups concurrent flushes itself.

Several nodes: a claim is ``SELECT … FOR UPDATE SKIP LOCKED`` and an ``UPDATE`` in one
statement, so two nodes never lease the same row. The lease is the row's ``due_at`` pushed
forward plus ``lease_owner``: a node that dies leaves rows that fall due again when their
lease runs out, and ``record_outcomes`` writes only rows still leased to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeAlias, TypeVar

import asyncpg

from gateway.core.errors import StoreError, StoreUnavailable
from gateway.core.model import (
    NewMessage,
)
from gateway.core.records import (
    AuditOf,
    EnqueueResult,
)
from gateway.store import writes
from gateway.store.postgres_enqueue import CHANNEL, enqueue_in, lock_key
from gateway.store.postgres_outbox import PostgresOutboxLog
from gateway.store.postgres_quota import PostgresQuotaHold
from gateway.store.postgres_relay import PostgresRelayQueries
from gateway.store.queries import CommonQueries
from gateway.store.sql import POSTGRES, Script, migrations, run_postgres

T = TypeVar("T")
Connection: TypeAlias = asyncpg.Connection
Work = Callable[[Connection], Awaitable[T]]

# Every node serialises its migrations on this advisory lock (an arbitrary constant:
# "gwschema" in ASCII), so nodes starting together apply each migration exactly once.
_MIGRATION_LOCK = 0x6777736368656D61
_MIGRATION_LOCK_TIMEOUT = "120s"

_CONNECT_TIMEOUT = 5.0  # seconds to open a TCP connection and log in
_COMMAND_TIMEOUT = 30.0  # seconds any one statement may take before it is cancelled
_MIN_ACQUIRE_TIMEOUT = 10.0  # waiting for a free pooled connection
_LISTEN_BACKOFF = (0.1, 5.0)  # first and largest pause between LISTEN reconnections
_LISTEN_PING = 15.0  # a LISTEN connection is checked this often (a half-open TCP hangs)


# --- errors ---------------------------------------------------------------------------------------

# SQLSTATE classes that mean "not now": the server is going away or coming up (57P01-03),
# out of resources (53), a lock or statement timeout (55P03, 57014), a lost race (40).
_TRANSIENT_POSTGRES = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.TooManyConnectionsError,
)
_DISK_FULL = "53100"


def _translate(exc: BaseException) -> StoreError:
    """The ``StoreError`` for an asyncpg or OS error; nothing else leaves this module."""
    text = f"postgresql: {type(exc).__name__}: {exc}"
    if isinstance(exc, asyncpg.exceptions.DiskFullError) or (
        getattr(exc, "sqlstate", None) == _DISK_FULL
    ):
        return StoreUnavailable(text, full=True)
    if isinstance(exc, _TRANSIENT_POSTGRES):
        return StoreUnavailable(text)
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError | OSError | TimeoutError):
        return StoreUnavailable(text)
    if isinstance(exc, asyncpg.exceptions.InterfaceError) and "clos" in str(exc):
        return StoreUnavailable(text)  # the pool or connection went away under us
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # "cannot switch to state …; another operation is in progress": a connection the
        # server cut in the middle of an operation (a restart), released back to the pool.
        return StoreUnavailable(text)
    return StoreError(text)


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (or the server) is gone, not just busy."""
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):  # class 57, but a timeout
        return False
    return isinstance(
        exc,
        asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.InternalClientError
        | OSError,
    )


# InternalClientError is not an InterfaceError: asyncpg raises it from a connection whose
# protocol state a server restart left inconsistent. Uncaught, it escaped the store as a
# bare exception (a crashed relay job, an intake session stuck in "nested MAIL").
_CAUGHT = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


def _migrations() -> list[tuple[int, str]]:
    return migrations(POSTGRES)


class PostgresStore(CommonQueries, PostgresRelayQueries, PostgresOutboxLog, PostgresQuotaHold):
    """``Store`` on a PostgreSQL database shared by every node (see the module docstring).

    The admin API's queries, the webhook outbox and the quota holds live in mixins of their
    own modules (``admin_queries``, written once for both stores; ``postgres_outbox``,
    ``postgres_quota``), method by
    method like SQLite's.

    Args:
        url: a ``postgresql://user:password@host:port/database`` URL (``store.url``).
        busy_timeout: how long a statement waits for a row or table lock before the call
            fails with ``StoreUnavailable`` (PostgreSQL's ``lock_timeout``); the same knob
            as SQLite's busy timeout.
        pool_size: the most connections this node holds open.
    """

    dialect = POSTGRES

    def __init__(
        self, url: str, busy_timeout: timedelta = timedelta(seconds=5), pool_size: int = 10
    ) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._closed = asyncio.Event()
        self._acquire_timeout = max(busy_timeout.total_seconds(), _MIN_ACQUIRE_TIMEOUT)

    # --- lifecycle ------------------------------------------------------------------------

    def _server_settings(self) -> dict[str, str]:
        # Startup parameters, not SETs: the pool runs RESET ALL whenever a connection is
        # released, which returns every setting to the value it had at login.
        return {
            "application_name": "gateway",
            "synchronous_commit": "on",
            "lock_timeout": f"{max(1, int(self.busy_timeout.total_seconds() * 1000))}ms",
            # A client that hangs inside a transaction must not hold row locks for ever.
            "idle_in_transaction_session_timeout": "60s",
            "timezone": "UTC",
        }

    async def _init_connection(self, conn: Connection) -> None:
        """Called by the pool on each new connection: make durability explicit."""
        await conn.execute("SET synchronous_commit = on")
        value = await conn.fetchval("SHOW synchronous_commit")
        if value != "on":  # pragma: no cover - only a server that refuses the SET
            raise StoreError(f"postgresql: synchronous_commit is {value!r}, need 'on'")

    async def open(self) -> None:
        """Create the pool, apply migrations under an advisory lock."""
        self._closed.clear()
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                timeout=_CONNECT_TIMEOUT,
                command_timeout=_COMMAND_TIMEOUT,
                server_settings=self._server_settings(),
                init=self._init_connection,
            )
        except _CAUGHT as exc:
            raise _translate(exc) from None
        except ValueError as exc:  # a malformed URL
            raise StoreError(f"postgresql: {exc}") from None
        try:
            await self._run(self._migrate)
        except BaseException:
            await self.close()
            raise

    async def _migrate(self, conn: Connection) -> None:
        # Runs in one transaction: the lock is held until commit, and a failed migration
        # leaves the schema as it was (PostgreSQL's DDL is transactional).
        await conn.execute(f"SET LOCAL lock_timeout = '{_MIGRATION_LOCK_TIMEOUT}'")
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer)")
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        for version, sql in _migrations():
            if version <= current:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_version VALUES ($1)", version)

    async def close(self) -> None:
        self._closed.set()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), _CONNECT_TIMEOUT)
            except _CAUGHT:
                pool.terminate()

    async def ping(self) -> None:
        await self._run(lambda c: c.fetchval("SELECT 1"), transaction=False)

    def hold_node(self, node_id: str) -> None:
        """Nothing to hold: nodes on one database each lease their own rows under their
        node id (``relay.node_id``, which the operator keeps distinct)."""

    async def backup(self, dest: str | Path) -> None:
        """Not in process: PostgreSQL is backed up with its own tools."""
        raise StoreError(f"use pg_dump (or a base backup) to back up PostgreSQL, not {dest}")

    # --- running work -------------------------------------------------------------------------

    async def _run(self, work: Work[T], *, transaction: bool = True) -> T:
        """Run ``work`` on a pooled connection (in one transaction unless told otherwise)."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("store is closed")
        try:
            async with pool.acquire(timeout=self._acquire_timeout) as conn:
                if not transaction:
                    return await work(conn)
                async with conn.transaction():
                    return await work(conn)
        except _CAUGHT as exc:
            error, lost = _translate(exc), _connection_lost(exc)
        if lost:
            # The server may have restarted: every idle connection is dead too. Expire them
            # so the next calls reconnect instead of failing one stale connection at a time.
            with contextlib.suppress(*_CAUGHT):
                await pool.expire_connections()
        raise error

    async def _query(self, script: Script[T]) -> T:
        """Run a read script (``store.sql``) on a pooled connection, outside a transaction."""
        return await self._run(lambda c: run_postgres(c, script), transaction=False)

    async def _transact(self, script: Script[T], *, durable: bool = True) -> T:
        """Run a script (``store.sql``) in one transaction (every commit is durable here)."""
        return await self._run(lambda c: run_postgres(c, script))

    async def _autocommit(self, script: Script[T]) -> T:
        """A one-statement write, outside a transaction: the statement is its own."""
        return await self._run(lambda c: run_postgres(c, script), transaction=False)

    # --- intake -------------------------------------------------------------------------------

    async def enqueue(
        self,
        message: NewMessage,
        duplicate_window: timedelta,
        *,
        audit: AuditOf | None = None,
    ) -> EnqueueResult:
        """Commit the message, its recipients and their ``queued`` events in one transaction,
        settle the quota holds of its transaction (``message.hold``; see
        ``store.sqlite_quota.settle_holds``) and notify ``gateway_queue`` (delivered to
        listeners only when it commits). ``audit`` builds the admin audit entry from the
        result, written in the same transaction (issue 13).

        Recipients already sent the same Message-ID by the same tenant within
        ``duplicate_window`` are recorded as ``duplicate`` events and not queued again.

        One statement does it all (``_ENQUEUE``): one round trip without a Message-ID. With
        one, ``BEGIN`` and an advisory lock on (tenant, Message-ID) go first in the same
        round trip, so two nodes taking the same retried message at once queue it once
        (SQLite's single writer serialises this check; here the lock does), then the
        statement, then ``COMMIT``: three round trips.
        """

        async def work(c: Connection) -> EnqueueResult:
            if not message.message_id and audit is None:
                return await enqueue_in(c, message, duplicate_window)  # one statement
            # The key is an integer computed here, so the simple-protocol text binds nothing.
            begin = "BEGIN"
            if message.message_id:
                key = lock_key(f"{message.tenant}\n{message.message_id}")
                begin += f"; SELECT pg_advisory_xact_lock({key})"
            await c.execute(begin)
            try:
                result = await enqueue_in(c, message, duplicate_window)
                await run_postgres(c, writes.audited(audit, result))
                await c.execute("COMMIT")
            except BaseException:
                await _rollback_quietly(c)
                raise
            return result

        return await self._run(work, transaction=False)

    # --- notifications ----------------------------------------------------------------------

    async def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever any node commits new work (``NOTIFY gateway_queue``).

        Runs until the store is closed or the task is cancelled, on a connection of its own
        (outside the pool). A lost connection is reopened with a bounded back-off, and
        ``callback()`` is called once after each reconnection, since notifications sent
        while it was down are lost.
        """
        pause = _LISTEN_BACKOFF[0]
        reconnecting = False
        while not self._closed.is_set():
            try:
                conn = await asyncpg.connect(
                    self.url,
                    timeout=_CONNECT_TIMEOUT,
                    command_timeout=_COMMAND_TIMEOUT,
                    server_settings=self._server_settings(),
                )
            except (*_CAUGHT, ValueError):
                await self._pause(pause)
                pause = min(pause * 2, _LISTEN_BACKOFF[1])
                continue
            try:
                catch_up, reconnecting = reconnecting, True
                await self._listen_on(conn, callback, catch_up=catch_up)
                pause = _LISTEN_BACKOFF[0]
            except _CAUGHT:
                await self._pause(pause)
                pause = min(pause * 2, _LISTEN_BACKOFF[1])
            finally:
                await _close_quietly(conn)

    async def _listen_on(
        self, conn: Connection, callback: Callable[[], None], *, catch_up: bool
    ) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, lambda *_args: callback())
        if catch_up:
            callback()
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            while not lost.is_set() and not self._closed.is_set():
                gone = asyncio.ensure_future(lost.wait())
                done, _ = await asyncio.wait(
                    {gone, closed}, timeout=_LISTEN_PING, return_when=asyncio.FIRST_COMPLETED
                )
                gone.cancel()
                if not done:  # quiet for a while: is the connection still there?
                    await conn.fetchval("SELECT 1", timeout=_CONNECT_TIMEOUT)
        finally:
            closed.cancel()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)


async def _rollback_quietly(conn: Connection) -> None:
    """Roll back a transaction begun by hand; a broken connection is the pool's to drop."""
    if conn.is_closed() or not conn.is_in_transaction():
        return
    with contextlib.suppress(*_CAUGHT):
        await conn.execute("ROLLBACK")


async def _close_quietly(conn: Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), _CONNECT_TIMEOUT)
    except _CAUGHT:
        conn.terminate()

