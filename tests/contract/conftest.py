"""Backends for the ``Store`` contract suite.

Every test in ``test_store_contract.py`` asks for ``store`` (an opened store, closed after
the test) or for ``backend`` (a handle that can open more stores on the same database and
look at it from the outside). Both are parametrised over ``BACKENDS``.

Adding a backend (e.g. ``"postgres"``): write a class with the ``Backend`` methods below,
add its name to ``BACKENDS`` and a branch to ``_make_backend`` (skip it when its server is
not configured). The outside view (``count``, ``rows``) takes SQL with ``?`` placeholders
over the shared schema; a PostgreSQL handle would rewrite them to ``$1``, ``$2``….
"""

from __future__ import annotations

import contextlib
import select
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from gateway.core.ports import Store
from gateway.store.sqlite import SqliteStore

BACKENDS = ["sqlite"]

_LOCK_READY_TIMEOUT = 10.0

# A second process that takes SQLite's write lock and holds it until its stdin closes.
_LOCKER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
c.execute("ROLLBACK")
c.close()
"""


class Backend(Protocol):
    """What the contract suite needs from a backend besides the ``Store`` port itself."""

    name: str

    def make(self, busy_timeout: timedelta | None = None) -> Store:
        """A new, unopened store on this backend's database (the same one every time)."""
        ...

    def broken(self) -> Store:
        """A store whose ``open()`` must fail (the database is unusable)."""
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


@dataclass
class SqliteBackend:
    """A real SQLite file in the test's ``tmp_path``."""

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
        with subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(self.path)],
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
                    proc.stdin.close()  # the locker reads EOF, rolls back and exits
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)

    async def backup_copy(self, store: Store, name: str) -> SqliteBackend | None:
        backup = getattr(store, "backup", None)
        if backup is None:
            return None
        dest = self.path.with_name(name)
        await backup(dest)
        return SqliteBackend(dest)


def _make_backend(name: str, tmp_path: Path) -> Backend:
    if name == "sqlite":
        return SqliteBackend(tmp_path / "store" / "gateway.db")
    raise ValueError(f"unknown backend {name!r}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _make_backend(request.param, tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = backend.make()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
