"""Pytest fixtures and the contract-suite backend for a real PostgreSQL server.

``pg_server`` (session) is the one server of the test process (``tests.pg.server``);
``pg_backend`` (function) is a fresh database on it, wrapped as the contract suite's
``Backend``. Import them into a conftest or test module to use them.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from gateway.core.ports import Store
from gateway.store.postgres import PostgresStore
from tests.pg.server import NoPostgres, PgServer, find_bindir, shared_server

_LOCK_READY_TIMEOUT = 20.0
_TABLES = "messages, recipients, events"

# A second process that locks the queue's tables against writers until its stdin closes.
_LOCKER = """
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


def _placeholders(sql: str) -> str:
    """``?`` placeholders (the suite's shared spelling) to PostgreSQL's ``$1, $2…``."""
    count = iter(range(1, 1000))
    return re.sub(r"\?", lambda _m: f"${next(count)}", sql)


@dataclass
class PostgresBackend:
    """A fresh database on the shared test server (the contract suite's ``Backend``)."""

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

    def count(self, table: str, where: str = "", params: tuple[Any, ...] = ()) -> int:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(self.rows(sql, params)[0][0])

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.server.fetch(self.database, _placeholders(sql), *params)

    @contextlib.contextmanager
    def exclusive_lock(self, how: str) -> Iterator[None]:
        """Lock the queue's tables against writers (``EXCLUSIVE``: readers still read)."""
        if how == "connection":
            conn = self.server.side_connect(self.database)
            try:
                self.server.side_call(
                    conn.execute(f"BEGIN; LOCK TABLE {_TABLES} IN EXCLUSIVE MODE")
                )
                yield
            finally:
                self.server.side_call(conn.close(timeout=10))  # closing rolls back
            return
        if how != "process":
            raise ValueError(how)
        with subprocess.Popen(
            [sys.executable, "-c", _LOCKER, self.url, _TABLES],
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

    async def backup_copy(self, store: Store, name: str) -> PostgresBackend | None:
        return None  # PostgreSQL is backed up with pg_dump, outside the process


def _missing_binaries(exc: NoPostgres) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {exc}", pytrace=False)
    pytest.skip(str(exc))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server on 127.0.0.1, for the whole test session."""
    try:
        find_bindir()
    except NoPostgres as exc:
        _missing_binaries(exc)
    with shared_server() as server:
        yield server


@pytest.fixture
def pg_backend(pg_server: PgServer) -> Iterator[PostgresBackend]:
    """A fresh, empty database for one test, dropped afterwards."""
    database = pg_server.create_database()
    try:
        yield PostgresBackend(pg_server, database)
    finally:
        pg_server.drop_database(database)
