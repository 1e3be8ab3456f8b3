"""Enqueue throughput of the PostgreSQL store: ``python -m tests.pg.bench_enqueue``.

Starts a throw-away PostgreSQL server (``tests.pg.server``, fsync on), opens one
``PostgresStore`` and runs ``--concurrency`` tasks that enqueue messages for ``--seconds``,
then prints enqueues per second. ``--no-message-id`` measures the path without the
duplicate check (no Message-ID: no advisory lock, one statement).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta

from gateway.core.model import NewMessage, Tenant
from gateway.store.postgres import PostgresStore
from tests.pg.server import shared_server

_BODY = b"From: a@app.test\r\nSubject: bench\r\n\r\n" + b"x" * 2000 + b"\r\n"


async def _bench(url: str, concurrency: int, seconds: float, recipients: int, mid: bool) -> float:
    store = PostgresStore(url, pool_size=concurrency)
    await store.open()
    try:
        await store.ensure_tenant(Tenant("bench"))
        counter = itertools.count()
        done = 0
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                n = next(counter)
                await store.enqueue(
                    NewMessage(
                        queue_id=f"B{n:09d}",
                        tenant="bench",
                        mail_from="a@app.test",
                        recipients=tuple(f"r{i}-{n}@example.com" for i in range(recipients)),
                        content=_BODY,
                        message_id=f"<{n}@app.test>" if mid else None,
                        subject="bench",
                        received_at=datetime.now(UTC),
                    ),
                    timedelta(hours=1),
                )
                done += 1

        started = time.monotonic()
        async with asyncio.timeout(seconds + 60):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - started)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--recipients", type=int, default=2)
    parser.add_argument("--no-message-id", action="store_true")
    args = parser.parse_args()
    with shared_server() as server:
        for mid in (False, True) if not args.no_message_id else (False,):
            database = server.create_database()
            rate = asyncio.run(
                _bench(server.url(database), args.concurrency, args.seconds, args.recipients, mid)
            )
            label = "with Message-ID" if mid else "without Message-ID"
            print(
                f"enqueue, {args.concurrency} concurrent, {args.recipients} recipients,"
                f" {label}: {rate:.0f}/s"
            )


if __name__ == "__main__":
    main()
