"""The intake's cost per ``RCPT TO``: a tenant without a quota vs one with an hourly quota.

Builds the gateway in-process as ``tests/scenarios/harness.py`` does (SQLite, or PostgreSQL
with ``--store-url``), listening for SMTP but without the relay, and a ``FakeDns`` that
gives ``example.com`` an MX. For each case it fills the store with ``--history`` recipients
queued in the last hour by the tenant (what the quota check has to take into account),
then times ``RCPT TO`` over a loopback socket:

* one session: ``--rcpts`` recipients, one command at a time (the reply awaited), in
  transactions of ``--per-message`` recipients ended by ``RSET``: microseconds per RCPT
  (median of the per-transaction means, and the min-max);
* ``--sessions`` sessions at once doing the same: recipients accepted per second in total.

The cases: ``no quota`` (the tenant has none), ``hourly quota`` (a quota larger than
everything sent, so every RCPT is accepted and the quota step runs in full). The client
shares the gateway's event loop, so the figures are a floor; compare the cases, not the
absolute numbers. Nothing leaves 127.0.0.0/8.

Usage::

    .venv/bin/python bench/rcpt_cost.py [--rcpts 2000] [--per-message 50] [--sessions 8]
                                        [--history 20000] [--store-url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import config as config_module
from gateway.app import Gateway, build, start_listeners
from gateway.core.model import NewMessage, Tenant
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import free_port
from tests.scenarios.harness import base_config

DOMAIN = "example.com"
TIMEOUT = 30.0  # seconds for any one reply


class Client:
    """A minimal SMTP client on asyncio streams: one command, one whole reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Client:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        await client.reply()
        await client.command("EHLO bench.test")
        return client

    async def reply(self) -> str:
        lines = []
        async with asyncio.timeout(TIMEOUT):
            while True:
                line = (await self.reader.readline()).decode()
                if not line:
                    raise ConnectionError("closed")
                lines.append(line.rstrip("\r\n"))
                if line[3:4] != "-":
                    return "\n".join(lines)

    async def command(self, line: str) -> str:
        self.writer.write(line.encode() + b"\r\n")
        return await self.reply()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.command("QUIT")
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def transactions(port: int, prefix: str, rcpts: int, per_message: int) -> list[float]:
    """Seconds per RCPT of each transaction of one session."""
    client = await Client.open(port)
    per_rcpt = []
    try:
        for start in range(0, rcpts, per_message):
            count = min(per_message, rcpts - start)
            assert (await client.command("MAIL FROM:<app@sender.example>")).startswith("250")
            began = time.perf_counter()
            for n in range(start, start + count):
                answer = await client.command(f"RCPT TO:<{prefix}{n}@{DOMAIN}>")
                assert answer.startswith("250"), answer
            per_rcpt.append((time.perf_counter() - began) / count)
            assert (await client.command("RSET")).startswith("250")
    finally:
        await client.close()
    return per_rcpt


async def fill_history(gw: Gateway, tenant: str, count: int) -> None:
    """``count`` recipients queued by ``tenant`` in the last hour (100 per message)."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    for n in range(0, count, 100):
        rcpts = tuple(f"old{m}@{DOMAIN}" for m in range(n, min(n + 100, count)))
        await gw.store.enqueue(
            NewMessage(
                queue_id=f"HIST{tenant}{n:08d}",
                tenant=tenant,
                mail_from="app@sender.example",
                recipients=rcpts,
                content=b"Subject: old\r\n\r\nold\r\n",
                message_id=None,
                subject="old",
                received_at=now,
            ),
            timedelta(0),
        )


async def one_case(gw: Gateway, args: argparse.Namespace, label: str, tag: str) -> None:
    port = gw.smtp_port
    await transactions(port, f"warm{tag}", min(args.per_message, args.rcpts), args.per_message)
    single = await transactions(port, f"one{tag}", args.rcpts, args.per_message)
    began = time.perf_counter()
    await asyncio.gather(
        *(
            transactions(port, f"s{s}{tag}", args.rcpts // args.sessions, args.per_message)
            for s in range(args.sessions)
        )
    )
    rate = (args.rcpts // args.sessions * args.sessions) / (time.perf_counter() - began)
    micros = [s * 1e6 for s in single]
    print(
        f"{label:<14} 1 session: {statistics.median(micros):7.1f} µs/RCPT"
        f" ({min(micros):.1f}-{max(micros):.1f});"
        f" {args.sessions} sessions: {rate:8.0f} RCPT/s"
    )


async def main(args: argparse.Namespace) -> None:
    with FakeDns() as dns:
        await _run(dns, args)


async def _run(dns: FakeDns, args: argparse.Namespace) -> None:
    dns.add_a("mx-bench.test", "127.0.0.2")
    dns.add_mx(DOMAIN, 10, "mx-bench.test")
    with tempfile.TemporaryDirectory(prefix="gw-rcpt-") as tmp:
        raw = base_config(
            dns,
            Path(tmp),
            free_port(),
            smtp={"max_recipients": max(args.per_message, 1)},
            log={"level": "error"},
        )
        if args.store_url:
            raw["store"] = {"url": args.store_url}
        gw = await build(config_module.from_dict(raw))
        try:
            await start_listeners(gw)
            store = gw.store
            total = args.history + 3 * args.rcpts + 10
            for name, quota in (("open", None), ("capped", total)):
                await store.ensure_tenant(Tenant(name))  # type: ignore[attr-defined]
                await store.update_tenant(Tenant(name, hourly_quota=quota))  # type: ignore[attr-defined]
                await fill_history(gw, name, args.history)
            cases = (("no quota", "open"), ("hourly quota", "capped"))
            print(
                f"store: {'postgresql' if args.store_url else 'sqlite'};"
                f" {args.history} recipients queued in the last hour;"
                f" {args.rcpts} RCPTs in transactions of {args.per_message}"
            )
            for label, tenant in cases:
                # Loopback clients send as the default tenant.
                gw.handler.config = dataclasses.replace(gw.handler.config, default_tenant=tenant)
                await asyncio.sleep(1.5)  # past any tenant cache's expiry
                await one_case(gw, args, label, tenant)
        finally:
            for server in gw.servers:
                server.close()
            await gw.store.close()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rcpts", type=int, default=2000)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--history", type=int, default=20000)
    parser.add_argument("--store-url", default="")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
