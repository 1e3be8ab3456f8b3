"""Bases of the stores' query mixins: how a mixin reaches the database, for the type checker.

Both stores mix in the queries written once (``Queries``: ``store.admin_queries``, …) and
their own dialect's (``SqliteQueries``, ``PostgresQueries``). The stores define the methods
declared here; the bases only let each mixin call them type-checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import sqlite3

    import asyncpg

    from gateway.store.sql import Dialect, Script

T = TypeVar("T")


class SqliteQueries:
    """A ``SqliteStore`` mixin: ``_read`` on the reader's connection, ``_write`` through the
    group-commit writer."""

    if TYPE_CHECKING:

        async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(
            self, work: Callable[[sqlite3.Connection], Any], *, durable: bool = True
        ) -> Any: ...


class PostgresQueries:
    """A ``PostgresStore`` mixin: ``_run`` on a pooled connection, in a transaction or not."""

    if TYPE_CHECKING:

        async def _run(
            self,
            work: Callable[[asyncpg.Connection], Awaitable[T]],
            *,
            transaction: bool = True,
        ) -> T: ...


class Queries:
    """A mixin of queries written once (``store.sql`` scripts): the store runs a script as
    one transaction (``_transact``), as a read (``_query``), or as a write of one statement
    that needs no transaction of its own (``_autocommit``: PostgreSQL saves its ``BEGIN``
    and ``COMMIT`` round trips), in its ``dialect``."""

    if TYPE_CHECKING:
        dialect: Dialect

        async def _query(self, script: Script[T]) -> T: ...

        async def _transact(self, script: Script[T], *, durable: bool = True) -> T: ...

        async def _autocommit(self, script: Script[T]) -> T: ...
