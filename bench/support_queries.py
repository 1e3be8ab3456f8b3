"""Support queries on a big store (issue 16 items 1 and 4): how long the tenant activity and
the overview aggregates take over 100,000 messages.

One command from the project root::

    .venv/bin/python bench/support_queries.py [--messages 100000] [--postgres]

It makes a fresh store (SQLite in a temporary directory; with ``--postgres`` also a private
PostgreSQL server on 127.0.0.1, as the tests start one), fills it with ``--messages``
messages over the last 9 UTC days, 20 tenants, one recipient each, and 2.2 events per
message (queued, then sent / deferred / bounced, some rejected refusals), written straight
into the tables in big batches (the store's own writes would take minutes and measure
nothing here). Then it times each query (the best of 5 runs, after one warm-up) and prints
the query plan's use of the indexes on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.core.activity import day_starts
from gateway.core.ports import Store
from gateway.store.sqlite import SqliteStore

NOW = datetime(2025, 3, 10, 14, 0, tzinfo=UTC)
DOMAINS = ["gmail.com", "outlook.com", "uol.com.br", "bol.com.br", "terra.com.br", "acme.example"]
HOSTS = {"gmail.com": "gmail-smtp-in.l.google.com", "outlook.com": "mx.outlook.com",
         "uol.com.br": "mx.uol.com.br", "bol.com.br": "mx.bol.com.br",
         "terra.com.br": "mx.terra.com.br", "acme.example": "mail.acme.example"}  # fmt: skip


def rows(n: int, seed: int = 1) -> tuple[list[tuple[Any, ...]], ...]:
    """(messages, recipients, events) rows for ``n`` messages."""
    rnd = random.Random(seed)
    messages, recipients, events = [], [], []
    span = 9 * 86400
    for i in range(n):
        tenant = f"t{rnd.randrange(20):02d}"
        at = NOW.timestamp() - rnd.random() * span
        domain = rnd.choice(DOMAINS)
        address = f"user{i}@{domain}"
        queue_id = f"Q{i:09d}"
        status = rnd.choices(["sent", "deferred", "bounced", "queued"], [85, 6, 6, 3])[0]
        messages.append((queue_id, tenant, "app@sender.example", f"<{queue_id}@app>", at))
        recipients.append((i + 1, queue_id, tenant, address, status, at + 5))
        events.append((queue_id, tenant, address, "queued", at, None, "", i + 1))
        if status != "queued":
            category = None if status == "sent" else "spam_blocked"
            events.append((queue_id, tenant, address, status, at + 5, category, HOSTS[domain],
                           i + 1))  # fmt: skip
        if i % 5 == 0:
            events.append((None, tenant, f"bad{i}@x", "rejected", at, None, "", None))
    return messages, recipients, events


def fill_sqlite(path: Path, n: int) -> None:
    messages, recipients, events = rows(n)
    with sqlite3.connect(path) as c:
        c.executemany(
            "INSERT INTO messages (queue_id, tenant, mail_from, message_id, size, received_at)"
            " VALUES (?, ?, ?, ?, 100, ?)",
            messages,
        )
        c.executemany(
            "INSERT INTO recipients (id, queue_id, tenant, address, status, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            recipients,
        )
        c.executemany(
            "INSERT INTO events (queue_id, tenant, address, type, at, category, remote_host,"
            " recipient_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
        c.execute("ANALYZE")


async def fill_postgres(store: Any, n: int) -> None:
    messages, recipients, events = rows(n)

    async def work(c: Any) -> None:
        await c.copy_records_to_table(
            "messages", records=[(*m[:4], 100, m[4]) for m in messages],
            columns=["queue_id", "tenant", "mail_from", "message_id", "size", "received_at"],
        )  # fmt: skip
        await c.copy_records_to_table(
            "recipients", records=recipients,
            columns=["id", "queue_id", "tenant", "address", "status", "updated_at"],
        )  # fmt: skip
        await c.copy_records_to_table(
            "events", records=[(e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]) for e in events],
            columns=["queue_id", "tenant", "address", "type", "at", "category", "remote_host",
                     "recipient_id"],
        )  # fmt: skip
        await c.execute("ANALYZE")

    await store._run(work)  # a bulk load, not a store operation


async def timings(store: Store) -> dict[str, float]:
    starts = day_starts(NOW)
    cases = {
        "tenant_activity(one tenant)": lambda: store.tenant_activity("t07", starts),
        "tenant_activity(every tenant)": lambda: store.tenant_activity(None, starts),
        "overview(every tenant)": lambda: store.overview(None, starts),
        "overview(one tenant)": lambda: store.overview("t07", starts),
    }
    out = {}
    for name, call in cases.items():
        await call()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            await call()
            best = min(best, time.perf_counter() - t0)
        out[name] = best * 1000
    return out


def plans(path: Path) -> None:
    starts = [s.timestamp() for s in day_starts(NOW)]
    with sqlite3.connect(path) as c:
        for sql, args in (
            ("SELECT max(received_at) FROM messages WHERE tenant = ?", ["t07"]),
            ("SELECT count(*) FROM messages WHERE received_at >= ? AND tenant = ?",
             [starts[-1], "t07"]),
            ("SELECT count(*) FROM events WHERE type = 'rejected' AND at >= ? AND tenant = ?",
             [starts[-1], "t07"]),
            ("SELECT tenant, type, count(*) FROM events WHERE at >= ? GROUP BY 1, 2",
             [starts[-1]]),
            ("SELECT remote_host, count(*) FROM events WHERE type IN ('bounced', 'deferred',"
             " 'expired') AND at >= ? GROUP BY 1", [starts[-1]]),
            ("SELECT tenant, status, count(*) FROM recipients WHERE status IN ('queued',"
             " 'deferred', 'held') GROUP BY 1, 2", []),
        ):  # fmt: skip
            plan = "; ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN " + sql, args))
            print(f"  plan: {plan}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gateway.db"
        store = SqliteStore(path)
        await store.open()
        await store.close()
        t0 = time.perf_counter()
        fill_sqlite(path, args.messages)
        print(f"sqlite: {args.messages} messages loaded in {time.perf_counter() - t0:.1f} s")
        store = SqliteStore(path)
        await store.open()
        try:
            for name, ms in (await timings(store)).items():
                print(f"  {name}: {ms:.1f} ms")
        finally:
            await store.close()
        plans(path)
    if args.postgres:
        from gateway.store.postgres import PostgresStore
        from tests.pg.server import shared_server

        with shared_server() as server:
            database = server.create_database()
            store = PostgresStore(server.url(database), busy_timeout=timedelta(seconds=30))
            await store.open()
            try:
                t0 = time.perf_counter()
                await fill_postgres(store, args.messages)
                print(f"postgres: loaded in {time.perf_counter() - t0:.1f} s")
                for name, ms in (await timings(store)).items():
                    print(f"  {name}: {ms:.1f} ms")
            finally:
                await store.close()


if __name__ == "__main__":
    asyncio.run(main())
