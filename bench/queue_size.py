"""Queue-size benchmark (issue 5, item 2): does a big deferred queue slow the gateway down?

One command from the project root::

    .venv/bin/python bench/queue_size.py [--deferred 1000000] [--messages 10000] [--runs 1]

Builds a SQLite store with ``--deferred`` recipients already deferred and not due (due in
two days, so the relay never touches them), inserted directly with ``sqlite3`` in bulk:
the schema comes from the gateway's own migrations (``SqliteStore.open``), then one
message per recipient (``--content-bytes`` of content), its recipient row (``deferred``,
one attempt, a 451 last reply) and two events (``queued``, ``deferred``), indexes dropped
during the load and re-created from the migration's own SQL; the webhook outbox's cursor is
left at the last event, as a running gateway's outbox leaves it.

Then, alternating per run, it starts the gateway (same config as ``bench/throughput.py``:
smarthost = a fresh ``smtp-sink``, DNS from a ``FakeDns``) once on a copy of that store and
once on an empty store, injects ``--messages`` messages (5,120 bytes, 20 sessions,
``smtp-source -d``) and times accepting and delivering them (until the sink has counted them
all). It prints both times, the ratio full/empty (target <= 1.2) and the gateway's peak RSS
(``VmHWM``) in both (target: no growth with the queue, < 300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import throughput as tp  # noqa: E402  (also puts the project root on sys.path)

from gateway.store.sqlite import SqliteStore  # noqa: E402

_TABLES = ("messages", "recipients", "events")


def build_store(path: Path, deferred: int, content_bytes: int, chunk: int = 50_000) -> None:
    """Create the schema with the gateway's migrations and bulk-insert the deferred queue."""

    async def schema() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(schema())
    started = time.monotonic()
    now = time.time()
    received = now - 3600  # accepted an hour ago, first attempt then
    due = now + 2 * 86400  # not due during the benchmark
    content = (
        b"From: App <app@sender.example>\r\nTo: someone@dest.example\r\n"
        b"Subject: queued earlier\r\n\r\n"
    )
    content += b"x" * max(0, content_bytes - len(content))
    reply = "451 4.7.1 Try again later"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as c:
        c.execute("PRAGMA synchronous = OFF")
        indexes = c.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            f" AND tbl_name IN ({','.join('?' * len(_TABLES))})",
            _TABLES,
        ).fetchall()
        for name, _ in indexes:
            c.execute(f"DROP INDEX {name}")
        next_report = time.monotonic() + 10
        for start in range(0, deferred, chunk):
            ids = range(start, min(start + chunk, deferred))
            c.execute("BEGIN")
            c.executemany(
                "INSERT INTO messages (queue_id, tenant, mail_from, message_id, subject, size,"
                " received_at, client_address, content) VALUES (?, 'default',"
                " 'app@sender.example', ?, 'queued earlier', ?, ?, '127.0.0.1', ?)",
                (
                    (f"OLD{i:017d}", f"<old-{i}@sender.example>", len(content), received, content)
                    for i in ids
                ),
            )
            c.executemany(
                "INSERT INTO recipients (id, queue_id, tenant, address, status, due_at, attempts,"
                " first_attempt_at, updated_at, category, last_reply) VALUES (?, ?, 'default',"
                " ?, 'deferred', ?, 1, ?, ?, 'receiving_problem', ?)",
                (
                    (i + 1, f"OLD{i:017d}", f"old{i}@dest.example", due, received, received, reply)
                    for i in ids
                ),
            )
            c.executemany(
                "INSERT INTO events (recipient_id, queue_id, tenant, address, type, at, category,"
                " reply_code, enhanced, text) VALUES (?, ?, 'default', ?, ?, ?, ?, ?, ?, ?)",
                (
                    row
                    for i in ids
                    for row in (
                        (
                            i + 1,
                            f"OLD{i:017d}",
                            f"old{i}@dest.example",
                            "queued",
                            received,
                            None,
                            None,
                            None,
                            "",
                        ),
                        (
                            i + 1,
                            f"OLD{i:017d}",
                            f"old{i}@dest.example",
                            "deferred",
                            received,
                            "receiving_problem",
                            451,
                            "4.7.1",
                            "Try again later",
                        ),
                    )
                ),
            )
            c.execute("COMMIT")
            if time.monotonic() >= next_report:
                tp.log(f"  store: {ids.stop:,}/{deferred:,} recipients inserted")
                next_report += 10
        tp.log(f"  store: re-creating {len(indexes)} indexes")
        for _, sql in indexes:
            c.execute(sql)
        # No ANALYZE: the gateway never runs it, so its stores have no sqlite_stat1 and the
        # query planner must do without statistics here too.
        # The webhook outbox of the gateway that deferred these has read the events log as it
        # went (it follows every commit): its cursor is at the end, not at the first event.
        c.execute("UPDATE webhook_cursor SET last_event_id = (SELECT max(id) FROM events)")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size / 1024**2
    tp.log(
        f"  store: {deferred:,} deferred recipients, {size:.0f} MiB, "
        f"built in {time.monotonic() - started:.0f}s"
    )


def trial(
    label: str, template: Path | None, args: argparse.Namespace, base: Path, dns: tp.FakeDns
) -> dict[str, float | str | None]:
    workdir = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=base))
    out: dict[str, float | str | None] = {"label": label, "error": ""}
    sink = tp.Sink(workdir)
    gw: tp.GatewaySystem | None = None
    try:
        sink.start()
        gw = tp.GatewaySystem(workdir, sink, dns, args.set, None)
        if template is not None:
            tp.log(f"  {label}: copying the store")
            shutil.copyfile(template, gw.db)
        tp.log(f"  {label}: starting the gateway")
        t_start = time.monotonic()
        gw.start()
        out["startup_s"] = time.monotonic() - t_start
        t0 = time.monotonic()
        elapsed, error = tp.smtp_source(
            gw.port, args.messages, args.sessions, 1, True, args.timeout, label, sink
        )
        out["accept_s"] = elapsed
        if error:
            out["error"] = error
            return out
        arrived = sink.wait_for(args.messages, args.timeout, label, t0)
        if arrived is None:
            out["error"] = f"sink had {sink.messages}/{args.messages} after {args.timeout:.0f}s"
            return out
        out["total_s"] = arrived - t0
        out["rss_mib"] = gw.peak_rss_mib()
        cpu = gw.cpu_seconds()
        out["cpu_s"] = cpu
        sent = gw._query("SELECT count(*) FROM recipients WHERE status = 'sent'")[0][0]
        if sent != args.messages:
            out["error"] = f"{sent} recipients sent, expected {args.messages}"
        return out
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        return out
    finally:
        if gw is not None:
            with contextlib.suppress(Exception):
                gw.stop()
        sink.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def show(r: dict[str, float | str | None]) -> str:
    def f(key: str, spec: str) -> str:
        v = r.get(key)
        return "-" if v is None else f"{v:{spec}}"

    text = (
        f"{r['label']:<14} start {f('startup_s', '5.1f')}s  accept {f('accept_s', '6.1f')}s  "
        f"accept+deliver {f('total_s', '6.1f')}s  peak RSS {f('rss_mib', '4.0f')} MiB  "
        f"cpu {f('cpu_s', '5.1f')}s"
    )
    return text + (f"  ERROR {r['error']}" if r["error"] else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deferred", type=int, default=1_000_000)
    parser.add_argument("--messages", "-n", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--content-bytes", type=int, default=1024, help="content size of each deferred message"
    )
    parser.add_argument(
        "--timeout", type=float, default=0, help="seconds per phase (default: 120 + N/10)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=TOML")
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="reuse (or build once into) this deferred-queue store file",
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        args.timeout = 120 + args.messages / 10
    tp.ensure_postfix()

    base = Path(tempfile.mkdtemp(prefix="gateway-queue-bench-"))
    base.chmod(0o755)
    dns = tp.FakeDns()
    results: list[dict[str, float | str | None]] = []
    try:
        dns.start()
        dns.add_mx(tp.DOMAIN, 10, tp.MX_NAME, ttl=86400)
        dns.add_a(tp.MX_NAME, "127.0.0.1", ttl=86400)
        template = args.store or base / "deferred-template.db"
        if template.exists():
            tp.log(f"queue_size: reusing {template}")
        else:
            tp.log(f"queue_size: building a store with {args.deferred:,} deferred recipients")
            build_store(template, args.deferred, args.content_bytes)
        for run in range(1, args.runs + 1):
            order = [("empty", None), ("deferred", template)]
            if run % 2 == 0:
                order.reverse()
            for name, store in order:
                r = trial(f"run{run}-{name}", store, args, base, dns)
                r["kind"] = name
                results.append(r)
                print(show(r), flush=True)
        ok = [r for r in results if not r["error"]]

        def med(kind: str, key: str) -> float | None:
            vals = [float(r[key]) for r in ok if r["kind"] == kind and r.get(key) is not None]
            return statistics.median(vals) if vals else None

        empty, full = med("empty", "total_s"), med("deferred", "total_s")
        print(
            f"accept+deliver {args.messages:,} messages: empty store {empty or 0:.1f}s, "
            f"{args.deferred:,} deferred {full or 0:.1f}s, "
            f"ratio {((full or 0) / empty) if empty else float('nan'):.2f} (target <= 1.2); "
            f"peak RSS empty {med('empty', 'rss_mib') or 0:.0f} MiB, "
            f"deferred {med('deferred', 'rss_mib') or 0:.0f} MiB (target < 300, no growth)",
            flush=True,
        )
    finally:
        dns.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            tp.log(f"kept {base}")
    return 1 if any(r["error"] for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
