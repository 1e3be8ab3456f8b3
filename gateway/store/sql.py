"""Our small query layer: each query written once, run on SQLite or PostgreSQL.

Owns: the dialects as data and the two drivers. A query is a *script*: a generator that
yields statements (``Op``) and receives each one's result, then returns what the store
method returns. It is written once, with ``?`` placeholders and a few markers for what the
dialects spell differently; ``render`` turns it into the dialect's text (cached), and a
driver runs the script on a connection: ``run_sqlite`` in the SQLite writer's (or reader's)
thread, inside its transaction; ``run_postgres`` on a pooled asyncpg connection. What is
really dialect-specific (the SQLite group-commit writer, ``FOR UPDATE SKIP LOCKED`` claims,
``LISTEN``/``NOTIFY``, the enqueue's single statement, the quota function) stays in the
stores' own modules. Does not own: connections, transactions or errors (the stores).

Markers (replaced in ``render``):

========================  ==============================  ===============================
marker                    SQLite                          PostgreSQL
========================  ==============================  ===============================
``?``                     ``?``                           ``$1``, ``$2``, … in order
``@C``                    (nothing: byte order already)   `` COLLATE "C"`` (byte order)
``@LEAST`` / ``@GREATEST``  ``min`` / ``max``             ``least`` / ``greatest``
``@LOCK``                 (nothing: one writer)           `` FOR UPDATE``
``@LOCK_R``               (nothing)                       `` FOR UPDATE OF r``
``@SKIP``                 (nothing)                       `` FOR UPDATE SKIP LOCKED``
``@DOMAIN_OF_ADDRESS``    ``substr(address, …)`` after    ``split_part(address, '@', 2)``
                          the first ``@``
========================  ==============================  ===============================

A list parameter goes through ``Dialect.among``: ``IN (?, ?, …)`` on SQLite (in chunks
under its bound-parameter limit), ``= ANY(?::text[])`` on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Op:
    """One statement of a script and what its result is: ``rows`` (every row), ``row``
    (the first, or ``None``), ``value`` (the first column of the first row, or ``None``),
    ``count`` (rows changed), ``many`` (``args`` is a sequence of argument tuples; no
    result) or ``id`` (an ``INSERT``'s new ``id``)."""

    kind: str
    sql: str
    args: Sequence[Any] = ()


#: A script: yields statements, is sent their results, returns its own.
Script = Generator[Op, Any, T]


def rows(sql: str, *args: Any) -> Op:
    return Op("rows", sql, args)


def row(sql: str, *args: Any) -> Op:
    return Op("row", sql, args)


def value(sql: str, *args: Any) -> Op:
    return Op("value", sql, args)


def count(sql: str, *args: Any) -> Op:
    return Op("count", sql, args)


def many(sql: str, args: Sequence[Sequence[Any]]) -> Op:
    return Op("many", sql, args)


def new_id(sql: str, *args: Any) -> Op:
    return Op("id", sql, args)


def one(sql: str, *args: Any) -> Script[Any]:
    """A script of one statement: its first row, or ``None``."""
    found = yield row(sql, *args)
    return found


def every(sql: str, *args: Any) -> Script[list[Any]]:
    """A script of one statement: all its rows."""
    found = yield rows(sql, *args)
    return list(found)


def single(sql: str, *args: Any) -> Script[Any]:
    """A script of one statement: the first column of its first row, or ``None``."""
    found = yield value(sql, *args)
    return found


def changed(sql: str, *args: Any) -> Script[int]:
    """A script of one statement: how many rows it changed."""
    n: int = yield count(sql, *args)
    return n


@dataclass(frozen=True, slots=True)
class Dialect:
    """What SQLite and PostgreSQL spell differently, as data."""

    name: str
    numbered: bool  # ``$n`` placeholders, else ``?``
    markers: tuple[tuple[str, str], ...]
    #: The most values one ``among`` list holds (SQLite's bound-parameter limit).
    chunk: int
    #: The statement that wakes every node's relay after new work committed (PostgreSQL's
    #: ``NOTIFY gateway_queue``, delivered at commit); SQLite has none.
    notify: str = ""

    def among(
        self, column: str, values: Sequence[Any], kind: str = "text"
    ) -> tuple[str, tuple[Any, ...]]:
        """``column`` is one of ``values`` (at most ``chunk`` of them; ``kind`` is their
        PostgreSQL type): the SQL and its arguments."""
        if self.numbered:
            return f"{column} = ANY(?::{kind}[])", (list(values),)
        return f"{column} IN ({', '.join('?' * len(values))})", tuple(values)

    def chunks(self, values: Sequence[T]) -> list[Sequence[T]]:
        """``values`` in pieces ``among`` takes (one piece on PostgreSQL)."""
        return [values[i : i + self.chunk] for i in range(0, len(values), self.chunk)]


SQLITE = Dialect(
    "sqlite",
    numbered=False,
    markers=(
        ("@C", ""),
        ("@LEAST", "min"),
        ("@GREATEST", "max"),
        ("@LOCK_R", ""),
        ("@LOCK", ""),
        ("@SKIP", ""),
        ("@DOMAIN_OF_ADDRESS", "substr(address, instr(address, '@') + 1)"),
    ),
    chunk=500,
)
POSTGRES = Dialect(
    "postgres",
    numbered=True,
    markers=(
        ("@C", ' COLLATE "C"'),
        ("@LEAST", "least"),
        ("@GREATEST", "greatest"),
        ("@LOCK_R", " FOR UPDATE OF r"),
        ("@LOCK", " FOR UPDATE"),
        ("@SKIP", " FOR UPDATE SKIP LOCKED"),
        ("@DOMAIN_OF_ADDRESS", "split_part(address, '@', 2)"),
    ),
    chunk=1_000_000,
    notify="SELECT pg_notify('gateway_queue', '')",
)


def migrations(dialect: Dialect) -> list[tuple[int, str]]:
    """The dialect's schema migrations (``migrations/<dialect>_NNN_*.sql``), in order."""
    folder = resources.files("gateway.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith(f"{dialect.name}_") and name.endswith(".sql"):
            found.append((int(name.split("_")[1]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def render(dialect: Dialect, sql: str) -> str:
    """``sql`` in ``dialect`` (see ``_render``), each text rendered once per process: the
    variety is bounded (our statements, and ``among`` lists up to ``Dialect.chunk``)."""
    key = (dialect.name, sql)
    found = _RENDERED.get(key)
    if found is None:
        found = _RENDERED[key] = _render(dialect, sql)
    return found


_RENDERED: dict[tuple[str, str], str] = {}


def _render(dialect: Dialect, sql: str) -> str:
    """``sql`` in ``dialect``: markers replaced, ``?`` numbered where the dialect wants
    ``$n`` (a ``?`` inside a quoted literal is left alone)."""
    for marker, text in dialect.markers:
        sql = sql.replace(marker, text)
    if not dialect.numbered:
        return sql
    out, n, quoted = [], 0, False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "?" and not quoted:
            n += 1
            out.append(f"${n}")
        else:
            out.append(char)
    return "".join(out)


def run_sqlite(c: sqlite3.Connection, script: Script[T]) -> T:
    """Run ``script`` on ``c`` (in its thread, in the caller's transaction)."""
    result: Any = None
    try:
        while True:
            op = script.send(result)
            sql = render(SQLITE, op.sql)
            if op.kind == "rows":
                result = c.execute(sql, op.args).fetchall()
            elif op.kind == "row":
                result = c.execute(sql, op.args).fetchone()
            elif op.kind == "value":
                found = c.execute(sql, op.args).fetchone()
                result = None if found is None else found[0]
            elif op.kind == "count":
                result = c.execute(sql, op.args).rowcount
            elif op.kind == "many":
                c.executemany(sql, op.args)
                result = None
            else:  # id
                result = int(c.execute(sql, op.args).lastrowid or 0)
    except StopIteration as done:
        returned: T = done.value
        return returned


async def run_postgres(c: asyncpg.Connection, script: Script[T]) -> T:
    """Run ``script`` on ``c`` (in the caller's transaction, if any)."""
    result: Any = None
    try:
        while True:
            op = script.send(result)
            sql = render(POSTGRES, op.sql)
            if op.kind == "rows":
                result = await c.fetch(sql, *op.args)
            elif op.kind == "row":
                result = await c.fetchrow(sql, *op.args)
            elif op.kind == "value":
                result = await c.fetchval(sql, *op.args)
            elif op.kind == "count":
                result = int((await c.execute(sql, *op.args)).rsplit(" ", 1)[-1])
            elif op.kind == "many":
                await c.executemany(sql, op.args)
                result = None
            else:  # id
                result = int(await c.fetchval(sql + " RETURNING id", *op.args))
    except StopIteration as done:
        returned: T = done.value
        return returned
