"""A real PostgreSQL server for the tests, started from Debian's package binaries.

Owns: finding ``initdb``/``pg_ctl`` (``/usr/lib/postgresql/*/bin``, then ``PATH``), a
throw-away cluster in a temporary directory that listens only on ``127.0.0.1`` (its unix
socket stays in that directory), starting, restarting and stopping it, a database per test,
and a synchronous side connection for tests that look at the database from outside.

Root: ``initdb`` and ``postgres`` refuse to run as root, so as root the cluster belongs to
the ``postgres`` system user (created when missing) and every server command runs through
``runuser``. No binaries: the tests are skipped, except under ``CI=true``, where that is a
failure (CI installs Debian's ``postgresql`` package, so missing binaries are a broken
install, not a reason to pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")

SUPERUSER = "gateway"
_RUN_AS = "postgres"
_START_TIMEOUT = 60  # seconds pg_ctl may wait for the server to accept connections
_QUERY_TIMEOUT = 30.0


class NoPostgres(Exception):
    """No PostgreSQL binaries on this machine."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: the newest Debian cluster version
    first, then whatever ``PATH`` has."""

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    raise NoPostgres(
        "PostgreSQL binaries not found (looked in /usr/lib/postgresql/*/bin and PATH); "
        "install them with: apt-get install -y postgresql"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_user(name: str) -> None:
    try:
        subprocess.run(["id", "-u", name], check=True, capture_output=True, timeout=10)
    except subprocess.CalledProcessError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
            timeout=30,
        )


class PgServer:
    """One throw-away PostgreSQL cluster; ``start()`` it, ``stop()`` it."""

    def __init__(self, bindir: Path | None = None, *, fsync: bool = True) -> None:
        self.bindir = bindir or find_bindir()
        self.fsync = fsync
        self.as_root = os.geteuid() == 0
        # As root the server runs as another user, who must be able to reach the directory.
        base = "/tmp" if self.as_root and Path("/tmp").is_dir() else None
        self.root = Path(tempfile.mkdtemp(prefix="gateway-pg-", dir=base))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "server.log"
        self.port = 0
        self._side = _SideConnections(self)
        self._databases = 0

    # --- server commands ---------------------------------------------------------------------

    def _cmd(self, *args: str) -> list[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            return ["runuser", "-u", _RUN_AS, "--", *command]
        return command

    def _run(self, *args: str, timeout: float = _START_TIMEOUT + 30) -> None:
        result = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n--- server log ---\n{log}"
            )

    def start(self) -> PgServer:
        """initdb (first time only) and start on a free loopback port."""
        if self.as_root:
            _ensure_user(_RUN_AS)
            shutil.chown(self.root, _RUN_AS)
        self.socket_dir.mkdir(exist_ok=True)
        if self.as_root:
            shutil.chown(self.socket_dir, _RUN_AS)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(
                    "\n# gateway tests\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.socket_dir}'\n"
                    "max_connections = 200\n"
                    f"fsync = {'on' if self.fsync else 'off'}\n"
                    "log_min_messages = warning\n"
                )
        for attempt in range(3):  # the free port may be taken between probe and bind
            self.port = _free_port()
            try:
                self._server("start")
            except RuntimeError:
                if attempt == 2:
                    raise
            else:
                return self

        raise AssertionError("unreachable")

    def _server(self, action: str, *extra: str) -> None:
        self._run(
            "pg_ctl",
            action,
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(_START_TIMEOUT),
            "-o",
            f"-p {self.port}",
            *extra,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions, disconnect everyone)."""
        self._side.close_all()
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")

    def restart(self) -> None:
        """Stop and start on the same port: every client connection is cut."""
        self._side.close_all()
        self._server("restart", "-m", "fast")

    def resume(self) -> None:
        """Start again after ``stop()``, on the same port."""
        self._server("start")

    def destroy(self) -> None:
        """Stop (if running) and delete the cluster."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("fast")
        self._side.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases ------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        self._databases += 1
        name = f"test_{os.getpid()}_{self._databases}"
        self.execute("postgres", f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._side.close(name)
        self.execute("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def fetch(self, database: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """A query on a side connection (not the store's), from synchronous test code."""
        return self._side.fetch(database, sql, *args)

    def execute(self, database: str, sql: str, *args: Any) -> None:
        self._side.execute(database, sql, *args)

    def side_call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the side connections' own event loop and wait for it."""
        return self._side.call(coro)

    def side_connect(self, database: str) -> asyncpg.Connection:
        """A new connection on the side loop (the caller closes it with ``side_call``)."""
        return self._side.call(asyncpg.connect(self.url(database), timeout=10))


class _SideConnections:
    """Connections used from synchronous test code while the test's own event loop is busy:
    they live on an event loop in a thread of their own, started once per server."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pg-side", daemon=True)
        self.thread.start()
        self.connections: dict[str, asyncpg.Connection] = {}

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(_QUERY_TIMEOUT)

    def _connection(self, database: str) -> asyncpg.Connection:
        conn = self.connections.get(database)
        if conn is None or conn.is_closed():
            conn = self.call(asyncpg.connect(self.server.url(database), timeout=10))
            self.connections[database] = conn
        return conn

    def fetch(self, database: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        rows = self.call(self._connection(database).fetch(sql, *args))
        return [tuple(row) for row in rows]

    def execute(self, database: str, sql: str, *args: Any) -> None:
        self.call(self._connection(database).execute(sql, *args))

    def close(self, database: str) -> None:
        conn = self.connections.pop(database, None)
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                self.call(conn.close(timeout=5))

    def close_all(self) -> None:
        for database in list(self.connections):
            self.close(database)

    def shutdown(self) -> None:
        self.close_all()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


# --- one server per test process, shared by every fixture that asks ---------------------------

_shared: PgServer | None = None
_users = 0
_lock = threading.Lock()


def acquire_shared(*, fsync: bool = True) -> PgServer:
    """The process's server, started on first use (with ``fsync`` then); pair with
    ``release_shared()``."""
    global _shared, _users  # noqa: PLW0603 - one server per test process, by design
    with _lock:
        if _shared is None:
            server = PgServer(fsync=fsync)
            try:
                server.start()
            except BaseException:
                server.destroy()
                raise
            _shared = server
        _users += 1
        return _shared


def release_shared() -> None:
    """Stop and delete the shared server once its last user is done."""
    global _shared, _users  # noqa: PLW0603
    with _lock:
        _users -= 1
        if _users <= 0 and _shared is not None:
            _shared.destroy()
            _shared = None
            _users = 0


@contextlib.contextmanager
def shared_server(*, fsync: bool = True) -> Iterator[PgServer]:
    server = acquire_shared(fsync=fsync)
    try:
        yield server
    finally:
        release_shared()
