"""The embedded default store: one SQLite file in WAL mode with ``synchronous=FULL``.

Owns: the schema's SQLite dialect, durable commits, group commit of concurrent writes,
claims with leases, and the translation of ``sqlite3`` errors into ``StoreError``. Does not
own: what the rows mean (``core``), nor when things are written (intake, relay).

Durability: every write goes through one writer that batches whatever is waiting into one
transaction, commits it (an fsync with ``synchronous=FULL`` in WAL mode), and only then
resolves each caller's future. A ``250`` therefore always follows its own fsync, while many
sessions share one (group commit). A batch of writes that nothing depends on after a crash
(quota holds: ``_write(..., durable=False)``) commits with ``synchronous=NORMAL``, without
the fsync; WAL keeps commits in order, so the next durable commit's fsync covers it.

Several processes may share the file (gateway processes on one machine, each its own relay
node, ``smtp.reuse_port``; the CLI beside a running gateway). Their writers take turns on a
lock file beside the database (``<db>-writer.lock``, ``flock``) before SQLite's own lock: a
waiting writer starts the moment the other commits, where SQLite's busy handler would sleep
in steps of up to 100 ms. Waiting for it is bounded by ``store.busy_timeout`` like SQLite's.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from gateway.core.errors import StoreError, StoreUnavailable
from gateway.core.model import (
    NewMessage,
)
from gateway.core.records import (
    AuditOf,
    EnqueueResult,
)
from gateway.store import rows
from gateway.store.queries import CommonQueries
from gateway.store.sql import SQLITE, Script, migrations, run_sqlite
from gateway.store.sqlite_outbox import SqliteOutboxLog
from gateway.store.sqlite_quota import SqliteQuotaHold
from gateway.store.sqlite_relay import RelayQueries
from gateway.store.sqlite_writes import (
    audited,
    enqueue_rows,
)

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]

_MAX_BATCH = 256


ts = rows.ts
dt = rows.dt


def _translate(exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        full = "full" in text or "disk I/O" in text
        return StoreUnavailable(f"sqlite: {text}", full=full)
    return StoreError(f"sqlite: {text}")


def _migrations() -> list[tuple[int, str]]:
    return migrations(SQLITE)


class SqliteStore(CommonQueries, SqliteOutboxLog, RelayQueries, SqliteQuotaHold):
    """``Store`` on one SQLite file (see the module docstring for durability).

    The admin API's queries, the relay's, the webhook outbox and the quota holds live in
    mixins of their own modules.
    """

    dialect = SQLITE

    def __init__(self, path: str | Path, busy_timeout: timedelta = timedelta(seconds=5)) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock: int | None = None  # the lock file's descriptor (module docstring)
        self._node_lock: int | None = None
        self._pending: list[tuple[Work, asyncio.Future[Any], bool]] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the file, set durable pragmas, apply migrations, start the writer."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock_path = self.path.with_name(self.path.name + "-writer.lock")
            self._write_lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._db = await aiosqlite.connect(
                self.path, timeout=self.busy_timeout.total_seconds(), isolation_level=None
            )
            await self._db.execute(
                f"PRAGMA busy_timeout = {int(self.busy_timeout.total_seconds() * 1000)}"
            )
            await self._db.execute("PRAGMA journal_mode = WAL")
            # FULL: the WAL is fsync'd at every commit, so a commit survives power loss.
            await self._db.execute("PRAGMA synchronous = FULL")
            await self._db.execute("PRAGMA foreign_keys = ON")
            await self._migrate()
            # Reads get a connection (and thread) of their own: in WAL mode they see the
            # last commit without waiting behind the writer's batch and its fsync.
            self._reader = await aiosqlite.connect(
                self.path, timeout=self.busy_timeout.total_seconds(), isolation_level=None
            )
            await self._reader.execute(
                f"PRAGMA busy_timeout = {int(self.busy_timeout.total_seconds() * 1000)}"
            )
            await self._reader.execute("PRAGMA query_only = ON")
        except BaseException as exc:
            # Close what was opened: aiosqlite's worker threads would otherwise outlive us.
            for db in (self._reader, self._db):
                if db is not None:
                    with contextlib.suppress(Exception):
                        await db.close()
            self._db = self._reader = None
            self._close_locks()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc) from None
            raise
        # The writer is owned by this store, started in open() and awaited in close(): it is
        # the store's own structured lifetime, not a fire-and-forget task.
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _migrate(self) -> None:
        assert self._db is not None
        await self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        async with self._db.execute("SELECT max(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        current = row[0] if row and row[0] is not None else 0
        for version, sql in _migrations():
            if version <= current:
                continue
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in sql.split(";\n"):
                    if statement.strip():
                        await _execute_once(self._db, statement)
                await self._db.execute("INSERT INTO schema_version VALUES (?)", (version,))
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        self._closing = True
        self._closed.set()
        self._wakeup.set()
        if self._writer is not None:
            await self._writer
            self._writer = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._db is not None:
            await self._db.close()
            self._db = None
        self._close_locks()

    def _close_locks(self) -> None:
        for fd in (self._write_lock, self._node_lock):
            if fd is not None:
                os.close(fd)
        self._write_lock = self._node_lock = None

    def hold_node(self, node_id: str) -> None:
        """Hold ``node_id`` on this database until ``close``: a second process with the same
        relay node id would release the first one's leases at its start (and both would
        deliver the same mail).

        Raises:
            StoreError: another process holds ``node_id`` on this database.
        """
        digest = hashlib.sha256(node_id.encode()).hexdigest()[:16]
        path = self.path.with_name(f"{self.path.name}-node-{digest}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"relay node {node_id!r} is already running on {self.path} (another process"
                f" holds {path.name})"
            ) from None
        if self._node_lock is not None:
            os.close(self._node_lock)
        self._node_lock = fd

    async def listen(self, callback: Callable[[], None]) -> None:
        """Nothing to hear: processes sharing the file find each other's new work when
        their relay next looks (it polls). Returns when the store is closed."""
        await self._closed.wait()

    async def ping(self) -> None:
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

    # --- the writer: group commit -----------------------------------------------------------

    async def _write(self, work: Work, *, durable: bool = True) -> Any:
        if self._closing or self._writer is None:
            raise StoreUnavailable("store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((work, future, durable))
        self._wakeup.set()
        return await future

    async def _write_loop(self) -> None:
        assert self._db is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
                await self._commit_batch(batch)
            if self._closing and not self._pending:
                return

    async def _commit_batch(self, batch: list[tuple[Work, asyncio.Future[Any], bool]]) -> None:
        assert self._db is not None
        # The whole batch runs in the connection's thread as one function: one round trip,
        # one transaction, one fsync. Each item gets a savepoint so one failure is its own.
        try:
            results = await self._in_thread(
                _run_batch,
                [work for work, _, _ in batch],
                self._write_lock,
                self.busy_timeout.total_seconds(),
                any(durable for _, _, durable in batch),
            )
        except sqlite3.Error as exc:  # BEGIN or COMMIT failed: nothing of the batch is durable
            error = _translate(exc)
            results = [(False, error) for _ in batch]
        for (_, future, _), (ok, value) in zip(batch, results, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in aiosqlite's connection thread, in one hop.

        aiosqlite's public API costs one thread round trip per statement; a batch of
        inserts would pay dozens per message. ``_execute`` is the primitive its own methods
        use, and running plain ``sqlite3`` code there keeps the connection single-threaded.
        """
        return await self._on(self._db, fn, *args)

    @staticmethod
    async def _on(db: aiosqlite.Connection | None, fn: Callable[..., T], *args: Any) -> T:
        if db is None:
            raise StoreUnavailable("store is closed")
        # aiosqlite's private primitive is untyped (see ``_in_thread``): its result is ``T``.
        return await db._execute(fn, db._conn, *args)  # type: ignore[no-any-return,no-untyped-call]

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._on(self._reader, work)
        except sqlite3.Error as exc:
            raise _translate(exc) from None

    async def _query(self, script: Script[T]) -> T:
        """Run a read script (``store.sql``) on the reader's connection."""
        return await self._read(lambda c: run_sqlite(c, script))

    async def _transact(self, script: Script[T], *, durable: bool = True) -> T:
        """Run a script (``store.sql``) as one write, in the group-commit writer."""
        result: T = await self._write(lambda c: run_sqlite(c, script), durable=durable)
        return result

    async def _autocommit(self, script: Script[T]) -> T:
        """A one-statement write: the same as ``_transact`` (every write is the writer's)."""
        return await self._transact(script)

    # --- intake -------------------------------------------------------------------------------

    async def enqueue(
        self,
        message: NewMessage,
        duplicate_window: timedelta,
        *,
        audit: AuditOf | None = None,
    ) -> EnqueueResult:
        """Commit the message, its recipients and their ``queued`` events durably, and
        settle the quota holds of its transaction (``message.hold``) in the same write.

        Recipients already sent the same Message-ID by the same tenant within
        ``duplicate_window`` are recorded as ``duplicate`` events and not queued again.
        ``audit`` builds the admin audit entry from the result, written in the same
        transaction (an admin's test message, issue 13).
        """

        def work(c: sqlite3.Connection) -> EnqueueResult:
            result = enqueue_rows(c, message, duplicate_window)
            audited(c, audit, result)
            return result

        result: EnqueueResult = await self._write(work)
        return result


    async def backup(self, dest: str | Path) -> None:
        """A consistent copy of the live database (SQLite's online backup API)."""
        if self._db is None:
            raise StoreUnavailable("store is closed")
        target = await aiosqlite.connect(dest)
        try:
            await self._db.backup(target)
        except sqlite3.Error as exc:
            raise _translate(exc) from None
        finally:
            await target.close()


# --- the batch runs inside aiosqlite's thread ---------------------------------------------------


def _run_batch(
    c: sqlite3.Connection,
    works: list[Work],
    lock: int | None,
    timeout: float,
    durable: bool = True,
) -> list[tuple[bool, Any]]:
    """One transaction for the batch; a savepoint per item so a failing item is undone alone.

    ``lock``, when given, is the writers' lock file (module docstring), held from before
    BEGIN until after COMMIT or ROLLBACK; ``timeout`` bounds the wait for it. Not
    ``durable``: committed without the fsync (module docstring).

    Raises ``sqlite3.Error`` when the lock, BEGIN or COMMIT fails: then no item is durable.
    """
    if lock is not None:
        _lock_writers(lock, timeout)
    try:
        # Set for every batch: a durable one never depends on an earlier one resetting it.
        c.execute("PRAGMA synchronous = FULL" if durable else "PRAGMA synchronous = NORMAL")
        return _transaction(c, works)
    finally:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _lock_writers(lock: int, timeout: float) -> None:
    """Take the writers' lock file, polling every 0.2-2 ms for at most ``timeout`` seconds
    (``flock`` itself cannot wait with a time limit)."""
    deadline = time.monotonic() + timeout
    pause = 0.0002
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("database is locked") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


def _transaction(c: sqlite3.Connection, works: list[Work]) -> list[tuple[bool, Any]]:
    results: list[tuple[bool, Any]] = []
    c.execute("BEGIN IMMEDIATE")
    try:
        for work in works:
            c.execute("SAVEPOINT item")
            try:
                value = work(c)
            except sqlite3.Error as exc:
                c.execute("ROLLBACK TO item")
                c.execute("RELEASE item")
                results.append((False, _translate(exc)))
            except Exception as exc:
                c.execute("ROLLBACK TO item")
                c.execute("RELEASE item")
                results.append((False, exc))
            else:
                c.execute("RELEASE item")
                results.append((True, value))
        c.execute("COMMIT")
    except BaseException:
        if c.in_transaction:
            c.execute("ROLLBACK")
        raise
    return results


async def _execute_once(db: aiosqlite.Connection, statement: str) -> None:
    """One migration statement. SQLite has no ``ADD COLUMN IF NOT EXISTS`` (PostgreSQL's
    dialect uses it): a column that is there already counts as added, so a migration can be
    applied again (``tests/contract/test_reason_migration.py`` re-applies 007 onwards)."""
    try:
        await db.execute(statement)
    except sqlite3.OperationalError as exc:
        adds = " ADD COLUMN " in " ".join(statement.upper().split())
        if not (adds and str(exc).startswith("duplicate column name")):
            raise
