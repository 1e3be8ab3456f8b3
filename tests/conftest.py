"""Shared fixtures: a DNS server on loopback, fake destination MTAs, and the store backends.

Nothing in the tests talks to anything but 127.0.0.0/8: the gateway's resolver points at
``FakeDns`` (``dns.nameservers``) and every destination is a ``FakeMx`` on 127.0.0.x.

``backend`` is parametrised over SQLite and PostgreSQL (``tests.backends``): a test that
asks for it, or for a fixture built on it (``store``, the admin suite's ``env``), runs once
per backend, with the backend in its id (``test_x[sqlite]``, ``test_x[postgres]``). The
PostgreSQL run is skipped when the server binaries are missing, except under ``CI=true``,
where that fails (``pg_server``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.ports import Store
from tests.backends import BACKENDS, Backend, PostgresBackend, SqliteBackend
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx
from tests.pg.server import NoPostgres, PgServer, find_bindir, shared_server
from tests.scenarios.harness import GatewayHarness


@pytest.fixture
def fake_dns() -> Iterator[FakeDns]:
    with FakeDns() as server:
        yield server


@pytest.fixture
async def make_mx() -> AsyncIterator[Callable[..., FakeMx]]:
    """Start fake MX servers on demand; every one is stopped at the end of the test."""
    started: list[FakeMx] = []

    def make(**kwargs: Any) -> FakeMx:
        fake = FakeMx(**kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
async def harness(fake_dns: FakeDns, tmp_path: Path) -> AsyncIterator[GatewayHarness]:
    """An in-process gateway over loopback (``tests/scenarios/harness.py``), stopped after."""
    h = GatewayHarness(fake_dns, tmp_path)
    try:
        yield h
    finally:
        await h.stop()
        h.close()


@pytest.fixture
async def fake_mx(make_mx: Callable[..., FakeMx]) -> FakeMx:
    return make_mx()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server on 127.0.0.1, for the whole test session."""
    try:
        find_bindir()
    except NoPostgres as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {exc}", pytrace=False)
        pytest.skip(str(exc))
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


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The test's database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "store" / "gateway.db")
    found: PostgresBackend = request.getfixturevalue("pg_backend")
    return found


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    """An opened store on ``backend``, closed after the test."""
    opened = backend.make()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
