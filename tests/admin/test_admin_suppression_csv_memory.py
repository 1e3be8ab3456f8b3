"""100,000 suppressions imported and exported over real HTTP on loopback, both stores, with
memory measured (issue 16 item 7): the request body is sent as a stream and read as one,
the export is read line by line, and tracemalloc's peak during each stays a small fraction
of the CSV's size — the rows are never all in memory at once."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from gateway.admin.app import build_admin_app, serve_http
from tests.admin.support import Env, auth
from tests.waiting import wait_until

ROWS = 100_000
SMALL = 20_000  # the same import at a fifth of the size: the peak must not grow with it
LINE = "user{:06d}@example.com,BOUNCE,2024-05-02T10:11:12+00:00\n"
SIZE = len("EmailAddress,Reason,LastUpdateTime\n") + ROWS * len(LINE.format(0))


async def _csv(rows: int = ROWS) -> AsyncIterator[bytes]:
    """SES's columns, 1,000 rows a chunk, made as they are sent."""
    yield b"EmailAddress,Reason,LastUpdateTime\n"
    for start in range(0, rows, 1000):
        yield "".join(LINE.format(i) for i in range(start, start + 1000)).encode()


async def _import_peak(client: httpx.AsyncClient, query: str, rows: int) -> tuple[int, Any]:
    """tracemalloc's peak over one import (the client's side included), and its report."""
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    r = await client.post(
        f"/api/v1/suppressions/import?{query}",
        content=_csv(rows),
        headers=auth() | {"content-type": "text/csv"},
    )
    peak = tracemalloc.get_traced_memory()[1] - base
    assert r.status_code == 200, r.text
    return peak, r.json()


@asynccontextmanager
async def _served(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    app = build_admin_app(env.deps)
    stopping = asyncio.Event()
    ports: list[int] = []
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(serve_http(app, "127.0.0.1", 0, stopping, on_listening=ports.append))
        try:
            await wait_until(lambda: ports, 5, what="the admin listener up")
            base = f"http://127.0.0.1:{ports[0]}"
            async with httpx.AsyncClient(base_url=base, timeout=300) as client:
                yield client
        finally:
            stopping.set()


async def test_100k_rows_in_and_out_with_bounded_memory(env: Env) -> None:
    async with asyncio.timeout(600), _served(env) as client:
        tracemalloc.start()
        try:
            small_peak, report = await _import_peak(client, "tenant=default", SMALL)
            assert report["added"] == SMALL
            import_peak, report = await _import_peak(client, "tenant=acme", ROWS)
            assert (report["added"], report["invalid"], report["rows"]) == (ROWS, 0, ROWS)

            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            seen = 0
            first = last = ""
            url = "/api/v1/suppressions/export?tenant=acme"
            async with client.stream("GET", url, headers=auth()) as s:
                assert s.status_code == 200
                async for line in s.aiter_lines():
                    if not line.strip():
                        continue
                    if seen == 1:
                        first = line
                    last = line
                    seen += 1
            export_peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert seen == ROWS + 1  # the header and every row, each once
        assert first.startswith("acme,user000000@example.com,nonexistent_address,all,2024-05-02")
        assert last.startswith(f"acme,user{ROWS - 1:06d}@example.com,")
        print(
            f"CSV {SIZE} B; peak import {import_peak} B ({SMALL} rows: {small_peak} B),"
            f" export {export_peak} B"
        )
        # Bounded: a batch or a page at a time, whatever the file's size. Held whole, the
        # rows would cost several times the CSV's 5.6 MB as Python objects, and five times
        # the rows would cost five times the memory.
        assert import_peak < SIZE / 2, (import_peak, SIZE)
        assert import_peak < 1.5 * small_peak, (import_peak, small_peak)
        assert export_peak < SIZE / 2, (export_peak, SIZE)
        # Idempotent at scale: the same file again changes nothing (a dry run: counts only).
        r = await client.post(
            "/api/v1/suppressions/import?tenant=acme&dry_run=true",
            content=_csv(),
            headers=auth() | {"content-type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["unchanged"], r.json()["added"]) == (ROWS, 0)
