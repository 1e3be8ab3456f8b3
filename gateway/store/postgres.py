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
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import asyncpg

from gateway.core.errors import StoreError, StoreUnavailable
from gateway.core.model import (
    Delivery,
    Event,
    NewMessage,
    Status,
    Suppression,
    SuppressionReason,
    Tenant,
)
from gateway.core.records import (
    AuditOf,
    EnqueueResult,
    Outcome,
    QueueSummary,
    RecipientView,
    hashed_address,
    notices_of,
)
from gateway.store import rows, writes
from gateway.store.admin_queries import AdminQueries
from gateway.store.outbox_queries import OutboxQueries
from gateway.store.postgres_outbox import PostgresOutboxLog
from gateway.store.postgres_quota import PostgresQuotaQueries
from gateway.store.rows import dt, minute_of, ts
from gateway.store.sql import POSTGRES, Script, run_postgres

T = TypeVar("T")
Connection: TypeAlias = asyncpg.Connection
Work = Callable[[Connection], Awaitable[T]]

#: The channel ``enqueue`` notifies and ``listen`` waits on.
CHANNEL = "gateway_queue"

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
    folder = resources.files("gateway.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith("postgres_") and name.endswith(".sql"):
            found.append((int(name.split("_")[1]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class PostgresStore(AdminQueries, OutboxQueries, PostgresOutboxLog, PostgresQuotaQueries):
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

    # --- tenants and credentials ------------------------------------------------------------

    async def ensure_tenant(self, tenant: Tenant) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO tenants (name, allowed_sender_domains, hourly_quota, daily_quota,"
                " created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
                tenant.name,
                ",".join(tenant.allowed_sender_domains),
                tenant.hourly_quota,
                tenant.daily_quota,
                datetime.now(UTC).timestamp(),
            )
        )

    async def update_tenant(self, tenant: Tenant) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE tenants SET allowed_sender_domains = $1, hourly_quota = $2,"
                " daily_quota = $3 WHERE name = $4",
                ",".join(tenant.allowed_sender_domains),
                tenant.hourly_quota,
                tenant.daily_quota,
                tenant.name,
            )
        )

    async def get_tenant(self, name: str) -> Tenant | None:
        row = await self._run(
            lambda c: c.fetchrow(
                "SELECT name, allowed_sender_domains, hourly_quota, daily_quota FROM tenants"
                " WHERE name = $1",
                name,
            ),
            transaction=False,
        )
        return None if row is None else _tenant(row)

    async def list_tenants(self) -> list[Tenant]:
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT name, allowed_sender_domains, hourly_quota, daily_quota FROM tenants"
                ' ORDER BY name COLLATE "C"'
            ),
            transaction=False,
        )
        return [_tenant(row) for row in rows]

    async def tenant_generation(self) -> int:
        """The counter every change to tenants, credentials and DKIM keys moves (triggers
        of migration 006, in the change's own transaction): the tenant directory's cue."""
        value = await self._run(
            lambda c: c.fetchval("SELECT generation FROM tenant_generation"), transaction=False
        )
        return int(value)

    async def set_credentials(
        self, tenant: str, username: str, secret_hash: str, *, audit: AuditOf | None = None
    ) -> None:
        """Set (or replace) a login's secret; ``audit`` builds the admin audit entry, written
        in the same transaction (issue 13)."""

        async def work(c: asyncpg.Connection) -> None:
            await run_postgres(
                c, writes.upsert_credentials(tenant, username, secret_hash, datetime.now(UTC))
            )
            await run_postgres(c, writes.audited(audit, None))

        await self._run(work)

    async def get_credentials(self, username: str) -> tuple[str, str] | None:
        row = await self._run(
            lambda c: c.fetchrow(
                "SELECT tenant, secret_hash FROM credentials WHERE username = $1", username
            ),
            transaction=False,
        )
        return None if row is None else (row[0], row[1])

    async def set_dkim_key(
        self, tenant: str, domain: str, selector: str, algorithm: str, private_key_pem: bytes
    ) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO dkim_keys (tenant, domain, selector, algorithm, private_key_pem,"
                " created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, domain)"
                " DO UPDATE SET selector = excluded.selector, algorithm = excluded.algorithm,"
                " private_key_pem = excluded.private_key_pem, created_at = excluded.created_at",
                tenant,
                domain,
                selector,
                algorithm,
                private_key_pem,
                datetime.now(UTC).timestamp(),
            )
        )

    async def dkim_keys(self) -> list[tuple[str, str, str, str, bytes]]:
        """Every DKIM key: (tenant, domain, selector, algorithm, private key PEM)."""
        rows = await self._run(
            lambda c: c.fetch(
                "SELECT tenant, domain, selector, algorithm, private_key_pem FROM dkim_keys"
            ),
            transaction=False,
        )
        return [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

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
                return await _enqueue_in(c, message, duplicate_window)  # one statement
            # The key is an integer computed here, so the simple-protocol text binds nothing.
            begin = "BEGIN"
            if message.message_id:
                key = _lock_key(f"{message.tenant}\n{message.message_id}")
                begin += f"; SELECT pg_advisory_xact_lock({key})"
            await c.execute(begin)
            try:
                result = await _enqueue_in(c, message, duplicate_window)
                await run_postgres(c, writes.audited(audit, result))
                await c.execute("COMMIT")
            except BaseException:
                await _rollback_quietly(c)
                raise
            return result

        return await self._run(work, transaction=False)

    async def record_event(self, event: Event) -> int:
        return await self._run(lambda c: _insert_event(c, event), transaction=False)

    async def count_accepted(self, tenant: str, since: datetime) -> int:
        value = await self._run(
            lambda c: c.fetchval(
                "SELECT count(*) FROM events WHERE tenant = $1 AND type = 'queued' AND at >= $2",
                tenant,
                since.timestamp(),
            ),
            transaction=False,
        )
        return int(value)

    # --- suppressions -------------------------------------------------------------------------

    async def find_suppression(
        self, tenant: str, address: str, now: datetime
    ) -> Suppression | None:
        row = await self._run(
            lambda c: c.fetchrow(
                f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions WHERE tenant = $1"
                " AND address = $2 AND (expires_at IS NULL OR expires_at > $3)",
                tenant,
                address,
                now.timestamp(),
            ),
            transaction=False,
        )
        return None if row is None else _suppression(row)

    async def suppression_for(self, tenant: str, address: str, now: datetime) -> Suppression | None:
        """``find_suppression``, else ``find_hashed_suppression``, in one round trip (the
        intake asks at every RCPT)."""
        row = await self._run(
            lambda c: c.fetchrow(
                f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions WHERE tenant = $1"
                " AND address IN ($2, $3) AND (expires_at IS NULL OR expires_at > $4)"
                " ORDER BY address = $2 DESC LIMIT 1",
                tenant,
                address,
                hashed_address(address),
                now.timestamp(),
            ),
            transaction=False,
        )
        return None if row is None else _suppression(row)

    async def add_suppression(self, suppression: Suppression) -> None:
        await self._transact(writes.upsert_suppression(suppression))

    async def remove_suppression(self, tenant: str | None, address: str) -> int:
        async def work(c: Connection) -> int:
            if tenant is None:
                status = await c.execute("DELETE FROM suppressions WHERE address = $1", address)
            else:
                status = await c.execute(
                    "DELETE FROM suppressions WHERE tenant = $1 AND address = $2", tenant, address
                )
            return _rowcount(status)

        return await self._run(work)

    async def list_suppressions(
        self, tenant: str | None, reason: SuppressionReason | None, limit: int, after: str = ""
    ) -> list[Suppression]:
        # COLLATE "C": byte order, as SQLite compares, whatever the database's locale.
        key = "(tenant || ' ' || address) COLLATE \"C\""
        sql = f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions WHERE {key} > $1"
        args: list[Any] = [after]
        if tenant is not None:
            args.append(tenant)
            sql += f" AND tenant = ${len(args)}"
        if reason is not None:
            args.append(reason.value)
            sql += f" AND reason = ${len(args)}"
        args.append(limit)
        sql += f" ORDER BY {key} LIMIT ${len(args)}"
        rows = await self._run(lambda c: c.fetch(sql, *args), transaction=False)
        return [_suppression(row) for row in rows]

    # --- relay ----------------------------------------------------------------------------------

    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Delivery]:
        """Lease up to ``limit`` due recipients to ``owner`` until ``now + lease``.

        The lease is the row's ``due_at`` pushed forward: if the owner dies, the row simply
        becomes due again when the lease runs out. ``SKIP LOCKED`` lets several nodes claim
        at once: each takes rows no other claim holds, none waits.
        """
        rows = await self._run(
            lambda c: c.fetch(
                "WITH due AS (SELECT r.id, r.due_at FROM recipients r JOIN messages m"
                " ON m.queue_id = r.queue_id WHERE r.due_at <= $1 AND m.held = 0"
                " ORDER BY r.due_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED)"
                " UPDATE recipients r SET due_at = $3, lease_owner = $4 FROM due, messages m"
                " WHERE r.id = due.id AND m.queue_id = r.queue_id"
                " RETURNING r.id, r.queue_id, r.tenant, m.mail_from, r.address, r.attempts,"
                " m.received_at, r.first_attempt_at, due.due_at AS was_due",
                now.timestamp(),
                limit,
                (now + lease).timestamp(),
                owner,
            ),
            transaction=False,  # one statement: its own transaction
        )
        rows = sorted(rows, key=lambda row: (row["was_due"], row["id"]))
        return [
            Delivery(row[0], row[1], row[2], row[3], row[4], row[5], _dt(row[6]), dt(row[7]))
            for row in rows
        ]

    async def claim_due_with_content(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> tuple[list[Delivery], dict[str, bytes | None]]:
        """``claim_due`` by whole messages, with their content, in one transaction.

        Every due recipient of a claimed message that no other claim holds is claimed with
        it (the limit is then exceeded by the rest of those messages). Returns the
        deliveries and queue id -> content (``None`` when it is gone) for every claimed
        message.
        """

        async def work(c: Connection) -> tuple[list[Delivery], dict[str, bytes | None]]:
            rows = await c.fetch(
                "WITH due AS (SELECT r.id, r.due_at, r.queue_id FROM recipients r"
                " JOIN messages m ON m.queue_id = r.queue_id WHERE r.due_at <= $1 AND m.held = 0"
                " ORDER BY r.due_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED),"
                " rest AS (SELECT r.id, r.due_at FROM recipients r"
                " WHERE r.queue_id IN (SELECT queue_id FROM due) AND r.due_at <= $1"
                " AND r.id NOT IN (SELECT id FROM due) FOR UPDATE SKIP LOCKED),"
                " picked AS (SELECT id, due_at FROM due UNION ALL SELECT id, due_at FROM rest)"
                " UPDATE recipients r SET due_at = $3, lease_owner = $4 FROM picked, messages m"
                " WHERE r.id = picked.id AND m.queue_id = r.queue_id"
                " RETURNING r.id, r.queue_id, r.tenant, m.mail_from, r.address, r.attempts,"
                " m.received_at, r.first_attempt_at, picked.due_at AS was_due",
                now.timestamp(),
                limit,
                (now + lease).timestamp(),
                owner,
            )
            rows = sorted(rows, key=lambda row: (row["was_due"], row["id"]))
            queue_ids = list(dict.fromkeys(row[1] for row in rows))
            contents: dict[str, bytes | None] = dict.fromkeys(queue_ids)
            if queue_ids:
                for found in await c.fetch(
                    "SELECT queue_id, content FROM messages WHERE queue_id = ANY($1::text[])",
                    queue_ids,
                ):
                    contents[found[0]] = None if found[1] is None else bytes(found[1])
            deliveries = [
                Delivery(row[0], row[1], row[2], row[3], row[4], row[5], _dt(row[6]), dt(row[7]))
                for row in rows
            ]
            return deliveries, contents

        return await self._run(work)

    async def next_due(self) -> datetime | None:
        value = await self._run(
            lambda c: c.fetchval(
                "SELECT min(r.due_at) FROM recipients r JOIN messages m"
                " ON m.queue_id = r.queue_id WHERE r.due_at IS NOT NULL AND m.held = 0"
            ),
            transaction=False,
        )
        return dt(value)

    async def load_content(self, queue_id: str) -> bytes | None:
        row = await self._run(
            lambda c: c.fetchrow("SELECT content FROM messages WHERE queue_id = $1", queue_id),
            transaction=False,
        )
        return None if row is None or row[0] is None else bytes(row[0])

    async def record_outcomes(self, outcomes: Sequence[Outcome], owner: str) -> dict[int, int]:
        """Record attempt results; rows no longer leased to ``owner`` are fenced off.

        Returns:
            recipient id -> event id for each outcome recorded. An outcome whose row was
            taken over by another owner (its lease ran out) is left out and not written.
        """

        async def work(c: Connection) -> dict[int, int]:
            recorded = {}
            for outcome in outcomes:
                ev = outcome.event
                status = await c.execute(
                    "UPDATE recipients SET status = $1, due_at = $2, lease_owner = NULL,"
                    " attempts = attempts + $3,"
                    " first_attempt_at = coalesce(first_attempt_at, $4),"
                    " updated_at = $4, category = coalesce($5, category), last_reply = $6"
                    " WHERE id = $7 AND lease_owner = $8",
                    outcome.status.value,
                    ts(outcome.due_at),
                    1 if ev.type in _ATTEMPT_EVENTS else 0,
                    ts(ev.at),
                    outcome.category.value if outcome.category else None,
                    _reply_text(ev),
                    outcome.recipient_id,
                    owner,
                )
                if _rowcount(status) == 1:
                    recorded[outcome.recipient_id] = await _insert_event(c, ev)
            # The policy's suppressions of the outcomes recorded, with their events, in the
            # outcomes' transaction (issue 13).
            for outcome in outcomes:
                event_id = recorded.get(outcome.recipient_id)
                if outcome.suppress is None or event_id is None:
                    continue
                suppression, event = outcome.suppress
                await _insert_event(c, event)
                if suppression.event_id is None:
                    suppression = dataclasses.replace(suppression, event_id=event_id)
                await run_postgres(c, writes.upsert_suppression(suppression))
            # The bounce notices the recorded outcomes cause, in their transaction.
            for notice in notices_of(outcomes, recorded):
                await _enqueue_in(c, notice, timedelta(0))
            return recorded

        return await self._run(work)

    async def suppressions_among(
        self, recipients: Sequence[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], Suppression]:
        """The active suppression of each ``(tenant, address)`` that has one, in clear or
        hashed (an erased address; the clear one first): a claimed batch in one statement."""
        wanted = list(dict.fromkeys(recipients))
        if not wanted:
            return {}
        found_rows = await self._run(
            lambda c: c.fetch(
                f"SELECT w.address, {rows.SUPPRESSION_COLUMNS_OF_S}"
                " FROM unnest($1::text[], $2::text[], $3::text[]) AS w (tenant, address, hashed)"
                " JOIN suppressions s ON s.tenant = w.tenant"
                " AND s.address IN (w.address, w.hashed)"
                " WHERE s.expires_at IS NULL OR s.expires_at > $4",
                [tenant for tenant, _ in wanted],
                [address for _, address in wanted],
                [hashed_address(address) for _, address in wanted],
                now.timestamp(),
            ),
            transaction=False,
        )
        found: dict[tuple[str, str], Suppression] = {}
        for row in found_rows:
            values = tuple(row)
            rows.keep_clear_first(found, (values[1], values[0]), _suppression(values[1:]))
        return found

    async def release_claims(
        self,
        owner: str,
        recipient_ids: Sequence[int] | None = None,
        due: datetime | None = None,
    ) -> int:
        """Make rows leased to ``owner`` due at ``due`` (now when ``None``): every such row
        (a restarted node's old leases), or only ``recipient_ids`` (jobs the relay gives
        back unsent). Nothing else changes: no attempt is counted, no event written."""
        at = (due or datetime.now(UTC)).timestamp()
        sql = "UPDATE recipients SET due_at = least(due_at, $1), lease_owner = NULL"

        async def work(c: Connection) -> int:
            if recipient_ids is None:
                status = await c.execute(sql + " WHERE lease_owner = $2", at, owner)
            else:
                status = await c.execute(
                    sql + " WHERE lease_owner = $2 AND id = ANY($3::bigint[])",
                    at,
                    owner,
                    list(recipient_ids),
                )
            count = _rowcount(status)
            if count:
                await c.execute("SELECT pg_notify($1, '')", CHANNEL)
            return count

        return await self._run(work)

    async def update_recipient(
        self, recipient_id: int, status: Status | None, event: Event
    ) -> int:
        """Set a recipient's status outside an attempt (async report, hold); returns the
        event's id. ``None`` keeps the row's status (whatever it is when the write runs). A
        final status clears ``due_at`` so the relay leaves the row alone."""

        async def work(c: Connection) -> int:
            await c.execute(
                "UPDATE recipients SET status = coalesce($1, status), updated_at = $2,"
                " category = coalesce($3, category), last_reply = $4,"
                " due_at = CASE WHEN $5 THEN NULL ELSE due_at END,"
                " lease_owner = CASE WHEN $5 THEN NULL ELSE lease_owner END WHERE id = $6",
                status.value if status is not None else None,
                ts(event.at),
                event.category.value if event.category else None,
                _reply_text(event),
                status is not None and status.is_final,
                recipient_id,
            )
            return await _insert_event(c, event)

        return await self._run(work)

    # --- history --------------------------------------------------------------------------------

    async def events_for(self, address: str, tenant: str | None, limit: int) -> list[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE address = $1"
        args: list[Any] = [address]
        if tenant is not None:
            args.append(tenant)
            sql += f" AND tenant = ${len(args)}"
        args.append(limit)
        sql += f" ORDER BY at DESC, id DESC LIMIT ${len(args)}"
        rows = await self._run(lambda c: c.fetch(sql, *args), transaction=False)
        return [_event(row) for row in rows]

    async def events_of_message(self, queue_id: str) -> list[Event]:
        rows = await self._run(
            lambda c: c.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE queue_id = $1 ORDER BY at, id",
                queue_id,
            ),
            transaction=False,
        )
        return [_event(row) for row in rows]

    async def recipients_of(self, queue_id: str) -> list[RecipientView]:
        rows = await self._run(
            lambda c: c.fetch(
                f"SELECT {_RECIPIENT_VIEW} WHERE r.queue_id = $1 ORDER BY r.id", queue_id
            ),
            transaction=False,
        )
        return [_recipient_view(row) for row in rows]

    async def recipient(self, recipient_id: int) -> RecipientView | None:
        row = await self._run(
            lambda c: c.fetchrow(f"SELECT {_RECIPIENT_VIEW} WHERE r.id = $1", recipient_id),
            transaction=False,
        )
        return None if row is None else _recipient_view(row)

    async def failure_streak(self, tenant: str, address: str, since: datetime) -> list[Event]:
        """Final outcomes (bounced, expired, sent, reports) for the address, newest first."""
        rows = await self._run(
            lambda c: c.fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE tenant = $1 AND address = $2"
                " AND at >= $3"
                " AND type IN ('bounced', 'expired', 'sent', 'report', 'unsuppressed')"
                " ORDER BY at DESC, id DESC LIMIT 100",
                tenant,
                address,
                since.timestamp(),
            ),
            transaction=False,
        )
        return [_event(row) for row in rows]

    async def queue_summary(self) -> QueueSummary:
        async def work(c: Connection) -> QueueSummary:
            counts = await c.fetch("SELECT status, count(*) FROM recipients GROUP BY status")
            oldest = await c.fetchval(rows.OLDEST_DEFERRED)
            return QueueSummary({row[0]: int(row[1]) for row in counts}, dt(oldest))

        return await self._run(work)

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


# --- enqueue in one statement ----------------------------------------------------------------

_DUPLICATE_TEXT = "Same Message-ID retried within the window; not queued again (original "

# $1 queue_id, $2 tenant, $3 mail_from, $4 message_id, $5 subject, $6 size, $7 received_at,
# $8 client_address, $9 content, $10 recipients, $11 start of the duplicate window,
# $12 the duplicate event's text before the original's queue id, $13 the channel,
# $14 the transaction's quota hold ('' for none), $15 the minute of $7.
#
# prev: recipients already queued under this Message-ID within the window (none without
# one); want: the others, in order. The message row is written only when some recipient is
# left; its RETURNING notifies the channel (delivered at commit). Recipient ids follow
# ``ORDER BY``; the events of the queued recipients come first, in recipient order, then
# the duplicates', as SQLite writes them. held/usage settle the quota holds as
# ``store.sqlite_quota.settle_holds`` does: for a counted tenant, each minute's usage moves
# by the queued recipients without a hold (+1, this minute) and the held ones not queued
# (-1, their minute), in one upsert (one statement may not change a row twice); a minute
# no longer kept is not written back with a negative count. Data-modifying CTEs always run
# to completion; the statement returns the duplicates (address, original queue id).
_ENQUEUE = (
    "WITH prev AS (SELECT DISTINCT ON (r.address) r.address, m.queue_id FROM messages m"
    " JOIN recipients r ON r.queue_id = m.queue_id WHERE $4::text IS NOT NULL"
    " AND m.tenant = $2 AND m.message_id = $4 AND r.address = ANY($10::text[])"
    " AND m.received_at >= $11),"
    " want AS (SELECT u.address, u.n FROM unnest($10::text[]) WITH ORDINALITY AS u(address, n)"
    " WHERE NOT EXISTS (SELECT 1 FROM prev p WHERE p.address = u.address)),"
    " msg AS (INSERT INTO messages (queue_id, tenant, mail_from, message_id, subject, size,"
    " received_at, client_address, content) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9"
    " WHERE EXISTS (SELECT 1 FROM want) RETURNING queue_id, pg_notify($13, '') AS woken),"
    " rcpt AS (INSERT INTO recipients (queue_id, tenant, address, status, due_at, updated_at)"
    " SELECT msg.queue_id, $2, w.address, 'queued', $7, $7 FROM msg, want w ORDER BY w.n"
    " RETURNING id, address),"
    f" ev AS ({rows.EVENT_INSERT} SELECT e.rid, e.qid, $2, e.address, e.type, $7, NULL,"
    " NULL, NULL, e.text, '', e.reason, '{}' FROM ("
    " SELECT 0 AS k, r.id AS n, r.id AS rid, $1::text AS qid, r.address, 'queued' AS type,"
    " '' AS text, 'queued' AS reason FROM rcpt r"
    " UNION ALL SELECT 1, u.n, NULL, p.queue_id, u.address, 'duplicate',"
    " $12::text || p.queue_id || ')', 'duplicate_message_id'"
    " FROM unnest($10::text[]) WITH ORDINALITY AS u(address, n)"
    " JOIN prev p ON p.address = u.address) e ORDER BY e.k, e.n),"
    " held AS (DELETE FROM quota_holds WHERE $14::text <> '' AND holder = $14"
    " RETURNING address, minute),"
    " delta AS (SELECT $15::bigint AS minute, 1 AS n FROM rcpt r"
    " WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.address = r.address)"
    " UNION ALL SELECT h.minute, -1 FROM held h"
    " WHERE NOT EXISTS (SELECT 1 FROM rcpt r WHERE r.address = h.address)),"
    " usage AS (INSERT INTO quota_usage (tenant, minute, used)"
    " SELECT $2, d.minute, sum(d.n) FROM delta d"
    " WHERE EXISTS (SELECT 1 FROM quota_tracking WHERE tenant = $2) GROUP BY d.minute"
    " HAVING sum(d.n) > 0 OR (sum(d.n) < 0 AND EXISTS (SELECT 1 FROM quota_usage q"
    " WHERE q.tenant = $2 AND q.minute = d.minute))"
    " ON CONFLICT (tenant, minute) DO UPDATE SET used = greatest(quota_usage.used"
    " + excluded.used, 0))"
    " SELECT p.address, p.queue_id FROM prev p"
)


def _enqueue_args(message: NewMessage, duplicate_window: timedelta) -> tuple[Any, ...]:
    """``_ENQUEUE``'s parameters for ``message``."""
    now = message.received_at.timestamp()
    return (
        message.queue_id,
        message.tenant,
        message.mail_from,
        message.message_id,
        message.subject,
        len(message.content),
        now,
        message.client_address,
        message.content,
        list(message.recipients),
        now - duplicate_window.total_seconds(),
        _DUPLICATE_TEXT,
        CHANNEL,
        message.hold,
        minute_of(now),
    )


def _enqueued(message: NewMessage, previous_rows: Sequence[Any]) -> EnqueueResult:
    """The ``EnqueueResult`` from ``_ENQUEUE``'s rows (the duplicates and their originals)."""
    previous = {row[0]: row[1] for row in previous_rows}
    queued = tuple(a for a in message.recipients if a not in previous)
    duplicates = tuple(a for a in message.recipients if a in previous)
    original = previous[duplicates[0]] if duplicates else None
    queue_id = message.queue_id if queued else (original or message.queue_id)
    return EnqueueResult(queue_id, queued, duplicates)


async def _enqueue_in(
    c: Connection, message: NewMessage, duplicate_window: timedelta
) -> EnqueueResult:
    """``enqueue``'s statement inside the caller's transaction (no Message-ID lock: a bounce
    notice has no Message-ID of its own, an admin's test message takes the lock first)."""
    return _enqueued(message, await c.fetch(_ENQUEUE, *_enqueue_args(message, duplicate_window)))


def _lock_key(text: str) -> int:
    """A signed 64-bit advisory lock key for ``text`` (the same on every node)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


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


# --- rows ---------------------------------------------------------------------------------------

# The shared converters under the names this module uses.
_SUPPRESSION_COLUMNS = rows.SUPPRESSION_COLUMNS
_ATTEMPT_EVENTS = rows.ATTEMPT_EVENTS
_EVENT_COLUMNS = rows.EVENT_COLUMNS
_EVENT_INSERT = rows.EVENT_INSERT
_RECIPIENT_VIEW = rows.RECIPIENT_VIEW
_dt = rows.utc
_reply_text = rows.reply_text
_event_values = rows.event_values
_event = rows.event_from
_tenant = rows.tenant_from
_suppression = rows.suppression_from
_recipient_view = rows.recipient_view_from


def _rowcount(status: str) -> int:
    """The row count from a command tag (``UPDATE 3``, ``DELETE 0``, ``INSERT 0 1``)."""
    return int(status.rsplit(" ", 1)[-1])


async def _insert_event(c: Connection, event: Event) -> int:
    return await run_postgres(c, writes.insert_event(event))
