"""Bases of the stores' query mixins: how a mixin reaches the database, for the type checker.

``SqliteStore`` mixes in ``AdminQueries``, ``OutboxQueries`` and ``RelayQueries``;
``PostgresStore`` mixes in ``PostgresAdminQueries`` and ``PostgresOutboxQueries``. The stores
define the methods declared here; the bases only let each mixin call them type-checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import sqlite3

    import asyncpg

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
