"""The two store backends the tests run on: a SQLite file and a database on a real PostgreSQL.

Owns the ``Backend`` handle the tests get from the ``backend`` fixture (``tests/conftest.py``,
parametrised over ``BACKENDS``): it opens stores on one database, looks at that database
from outside (``count``, ``rows``), locks it against writers, and points a ``StoreConfig``
at it. It does not own the PostgreSQL server itself (``tests.pg.server``) or any fixture.

The outside view takes SQL with ``?`` placeholders over the shared schema; the PostgreSQL
handle rewrites them to ``$1``, ``$2``….
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import select
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from gateway.config import StoreConfig
from gateway.core.ports import Store
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore
from tests.pg.server import PgServer

BACKENDS = ["sqlite", "postgres"]

_LOCK_READY_TIMEOUT = 20.0
_PG_TABLES = "messages, recipients, events"

# A second process that takes SQLite's write lock and holds it until its stdin closes.
_SQLITE_LOCKER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
c.execute("ROLLBACK")
c.close()
"""

# A second process that locks the queue's tables against writers until its stdin closes.
_PG_LOCKER = """
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1], timeout=10)
    tr = conn.transaction()
    await tr.start()
    await conn.execute(f"LOCK TABLE {sys.argv[2]} IN EXCLUSIVE MODE")
    print("locked", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await tr.rollback()
    await conn.close()
asyncio.run(main())
"""


class Backend(Protocol):
    """What the tests need from a backend besides the ``Store`` port itself."""

    name: str

    def make(self, busy_timeout: timedelta | None = None) -> Store:
        """A new, unopened store on this backend's database (the same one every time)."""
        ...

    def broken(self) -> Store:
        """A store whose ``open()`` must fail (the database is unusable)."""
        ...

    def configure(self, store: StoreConfig) -> StoreConfig:
        """``store`` pointed at this backend's database (``path`` or ``url``)."""
        ...

    def count(self, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
        """Rows in ``table`` as seen by a separate connection (not the store's)."""
        ...

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A query on a separate connection."""
        ...

    def exclusive_lock(self, how: str) -> contextlib.AbstractContextManager[None]:
        """Hold the database's write lock from outside: ``how`` is ``connection`` (another
        connection in this process) or ``process`` (another OS process)."""
        ...

    async def backup_copy(self, store: Store, name: str) -> Backend | None:
        """Back the store up to a new database and return a handle on the copy, or
        ``None`` when the backend has no in-process backup."""
        ...


@contextlib.contextmanager
def _locked_by_another_process(script: str, *args: str) -> Iterator[None]:
    """Run ``script`` (a locker above) and hold until it prints ``locked``; closing its
    stdin at the end makes it roll back and exit."""
    with subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            ready, _, _ = select.select([proc.stdout], [], [], _LOCK_READY_TIMEOUT)
            line = proc.stdout.readline() if ready else b""
            assert line.strip() == b"locked", f"locker did not start: {line!r}"
            yield
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@dataclass
class SqliteBackend:
    """A real SQLite file (in the test's ``tmp_path``)."""

    path: Path
    name: str = "sqlite"

    def make(self, busy_timeout: timedelta | None = None) -> SqliteStore:
        if busy_timeout is None:
            return SqliteStore(self.path)
        return SqliteStore(self.path, busy_timeout=busy_timeout)

    def broken(self) -> SqliteStore:
        bad = self.path.with_name("not-a-database.db")
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_bytes(b"this is not an SQLite database\n" * 512)
        return SqliteStore(bad)

    def configure(self, store: StoreConfig) -> StoreConfig:
        return dataclasses.replace(store, path=str(self.path), url="")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with contextlib.closing(sqlite3.connect(self.path, timeout=5)) as conn:
            yield conn

    def count(self, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        with self._connect() as conn:
            return int(conn.execute(sql, params).fetchone()[0])

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._connect() as conn:
            return list(conn.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def exclusive_lock(self, how: str) -> Iterator[None]:
        if how == "connection":
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
            try:
                conn.execute("BEGIN EXCLUSIVE")
                yield
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.close()
            return
        if how != "process":
            raise ValueError(how)
        with _locked_by_another_process(_SQLITE_LOCKER, str(self.path)):
            yield

    async def backup_copy(self, store: Store, name: str) -> SqliteBackend | None:
        backup = getattr(store, "backup", None)
        if backup is None:
            return None
        dest = self.path.with_name(name)
        await backup(dest)
        return SqliteBackend(dest)


def _placeholders(sql: str) -> str:
    """``?`` placeholders (the shared spelling) to PostgreSQL's ``$1, $2…``."""
    count = iter(range(1, 1000))
    return re.sub(r"\?", lambda _m: f"${next(count)}", sql)


@dataclass
class PostgresBackend:
    """A fresh database on the shared test server (``tests.pg.server``)."""

    server: PgServer
    database: str
    name: str = "postgres"

    @property
    def url(self) -> str:
        return self.server.url(self.database)

    def make(self, busy_timeout: timedelta | None = None) -> PostgresStore:
        if busy_timeout is None:
            return PostgresStore(self.url, busy_timeout=timedelta(seconds=5))
        return PostgresStore(self.url, busy_timeout=busy_timeout)

    def broken(self) -> PostgresStore:
        return PostgresStore(self.server.url(f"{self.database}_does_not_exist"), timedelta(1))

    def configure(self, store: StoreConfig) -> StoreConfig:
        return dataclasses.replace(store, url=self.url)

    def count(self, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self.rows(sql, params)[0][0])

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.server.fetch(self.database, _placeholders(sql), *params)

    def listening(self) -> int:
        """Sessions on this database whose last statement was a ``LISTEN``: a
        ``PostgresStore.listen()`` that is in place (NOTIFY reaches it from now on)."""
        where = "datname = current_database() AND query LIKE 'LISTEN %'"
        return self.count("pg_stat_activity", where)

    @contextlib.contextmanager
    def exclusive_lock(self, how: str) -> Iterator[None]:
        """Lock the queue's tables against writers (``EXCLUSIVE``: readers still read)."""
        if how == "connection":
            conn = self.server.side_connect(self.database)
            try:
                self.server.side_call(
                    conn.execute(f"BEGIN; LOCK TABLE {_PG_TABLES} IN EXCLUSIVE MODE")
                )
                yield
            finally:
                self.server.side_call(conn.close(timeout=10))  # closing rolls back
            return
        if how != "process":
            raise ValueError(how)
        with _locked_by_another_process(_PG_LOCKER, self.url, _PG_TABLES):
            yield

    async def backup_copy(self, store: Store, name: str) -> PostgresBackend | None:
        return None  # PostgreSQL is backed up with pg_dump, outside the process
