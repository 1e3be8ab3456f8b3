"""Shared fixtures: a DNS server on loopback, fake destination MTAs, and the store backends.

Nothing in the tests talks to anything but 127.0.0.0/8: the gateway's resolver points at
``FakeDns`` (``dns.nameservers``) and every destination is a ``FakeMx`` on 127.0.0.x.

``backend`` is parametrised over SQLite and PostgreSQL (``tests.backends``): a test that
asks for it, or for a fixture built on it (``store``, the admin suite's ``env``), runs once
per backend, with the backend in its id (``test_x[sqlite]``, ``test_x[postgres]``). The
PostgreSQL run is skipped when the server binaries are missing, except under ``CI=true``,
where that fails (``pg_server``).

Two worker processes (pytest-xdist: ``python3 dev.py test`` runs ``-n 2 --dist loadgroup``):
every fixture here is per process — each worker starts its own PostgreSQL server (its
databases are named by PID), its own DNS servers and fakes on ports of its own (``free_port``
takes them from a block below the kernel's ephemeral range that only this worker uses), and
its own ``tmp_path`` tree. What cannot share the machine is named in ``SERIAL`` (run alone,
after the parallel run: timing bounds, event-loop responsiveness, several gateway processes
at once) and ``XDIST_GROUPS`` (tests that run on one worker, one after the other: kill -9
scenarios, schemathesis, modules with a costly module-scoped fixture).
"""

from __future__ import annotations

import json
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

#: Tests that need the machine to themselves, by node id prefix, each with its reason. They get
#: the ``serial`` marker: ``dev.py test`` leaves them out of the parallel run (``-m "not
#: serial"``) and runs them after it, alone. A new test of this kind either appears here or
#: carries ``@pytest.mark.serial`` itself. No bound is loosened for the parallel run.
SERIAL: dict[str, str] = {
    "tests/scenarios/test_event_loop_stays_responsive.py": "asyncio's 50 ms slow-callback watch",
    "tests/scenarios/test_relay_tarpit.py::test_tarpits_hold_only_their_own_sites": (
        "wall-clock bound on how long a tarpit holds a connection"
    ),
    "tests/scenarios/test_postgres_node.py::test_mail_queued_by_another_node_is_picked_up": (
        "NOTIFY, not the poll: picked up within a bound"
    ),
    "tests/scenarios/test_tenant_changes_across_nodes.py": "several nodes; propagation bound",
    "tests/scenarios/test_multinode_kill.py": "two gateway processes under load, one killed",
    "tests/scenarios/test_multinode_pg_restart.py": "gateway processes under load, PG restarted",
    "tests/scenarios/test_workers.py": "one worker process per core behind one port",
    "tests/scenarios/test_two_processes.py": "two gateway processes on one port and store",
    "tests/contract/test_sqlite_store.py::test_a_slow_read_does_not_stall_the_loop": (
        "the loop's gaps stay under 50 ms"
    ),
    "tests/contract/test_postgres_store.py::test_enqueue_on_one_node_wakes_listen": (
        "NOTIFY wakes the other node within a second"
    ),
    "tests/contract/test_postgres_store.py::test_skip_locked_claims_do_not_wait": (
        "a claim returns within 2 s"
    ),
}

#: Tests that share an ``xdist_group`` run on one worker, one after the other, by node id
#: prefix: kill -9 scenarios (gateway subprocesses crashed and restarted: at most one at a
#: time), schemathesis on both stores (each run keeps two processes busy, ``st`` and the app,
#: for about a minute: together, beside the other workers, they overran the test's own
#: bound on a loaded machine), and modules whose ``scope="module"`` fixture is costly (made
#: once per worker that runs one of their tests: the fresh install is a ``pip install``).
XDIST_GROUPS: dict[str, str] = {
    "tests/scenarios/test_crash_kill9_after_250.py": "kill9",
    "tests/scenarios/test_crash_sigterm_during_delivery.py": "kill9",
    "tests/scenarios/test_fault_kill9_": "kill9",
    "tests/scenarios/test_fault_sqlite_locked.py": "kill9",
    "tests/admin/test_schemathesis.py": "schemathesis",
    "tests/install/test_fresh_install.py": "fresh_install",
    "tests/unit/test_dkim.py": "dkim_keys",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "serial: needs the machine to itself (SERIAL below); `python3 dev.py test` runs these"
        " alone, after the parallel run",
    )


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups and ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.nodeid.startswith(prefix) for prefix in SERIAL):
            item.add_marker(pytest.mark.serial)
            continue
        for prefix, group in XDIST_GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
                break


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """``GATEWAY_TEST_TALLY=<file>``: the run's counts as JSON, for ``dev.py test``'s one total
    line over its parallel and serial runs (written by the controller, not by workers)."""
    path = os.environ.get("GATEWAY_TEST_TALLY")
    if not path or hasattr(config, "workerinput"):
        return
    kinds = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
    tally = {kind: len(terminalreporter.stats.get(kind, [])) for kind in kinds}
    Path(path).write_text(json.dumps(tally), encoding="utf-8")


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
    # fsync off: the server is thrown away, and no test can tell (a process a test kills loses
    # nothing the OS holds; only the machine failing would). Each test's DROP DATABASE then
    # takes ~25 ms instead of ~650 ms. The benchmarks start theirs with fsync on.
    with shared_server(fsync=False) as server:
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
