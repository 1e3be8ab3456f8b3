"""Throughput of two gateway nodes on PostgreSQL relative to one node on SQLite (issue 6).

One command from the project root::

    .venv/bin/python bench/two_nodes.py [--messages 5000] [--sessions 20] [--runs 1]
                                        [--systems sqlite1,pg2] [--set section.key=VALUE]

Everything runs on this machine, over loopback, with the pieces of ``bench/throughput.py``:
one ``smtp-sink`` as the destination (``relay.smarthost``), ``smtp-source`` as the load
(``-s SESSIONS -m N -l 5120 -r 1 -d -N``: one connection per session, distinct recipients),
a ``FakeDns`` in this process for the intake's MX check, ``log.level = "warning"``. Systems:

* ``sqlite1``: one gateway on its embedded SQLite store (``synchronous=FULL``);
* ``pg1``: one gateway on PostgreSQL (for reference; not in the default set);
* ``pg2``: two gateways (distinct ``relay.node_id``) sharing one PostgreSQL database, the
  load split in two: one ``smtp-source`` per node with half the sessions and messages,
  started together.

PostgreSQL is a throw-away cluster from Debian's binaries (``tests/pg/server.py``: loopback
only, ``fsync = on``, ``synchronous_commit = on`` on every gateway connection, so a ``250``
follows a WAL flush as it follows an fsync on SQLite), a fresh database per trial.

Figures per trial: ``accept/s`` (N / time until every ``smtp-source`` exited with status 0:
every message got ``250``), ``e2e/s`` (N / time until the sink counted N), gateway CPU per
message (the gateway processes' utime+stime; PostgreSQL's own CPU is not included), and at
the end the ratios ``pg2 / sqlite1`` (and ``pg1 / sqlite1``) of the medians.

On a 2-core machine both nodes, PostgreSQL, the sink and the load share the same two cores:
the ratio says what a second node costs or gains on one box, not what two machines give.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import throughput as tp  # noqa: E402  (bench/throughput.py: sink, load, gateway process)

from tests.fakes.dns_server import FakeDns  # noqa: E402
from tests.pg.server import PgServer  # noqa: E402

SYSTEMS = ("sqlite1", "pg1", "pg2")


@dataclass
class Trial:
    system: str
    run: int
    messages: int
    accept_rate: float | None = None
    e2e_rate: float | None = None
    cpu_ms: float | None = None
    error: str = ""


def _gateway(workdir: Path, sink: tp.Sink, dns: FakeDns, overrides: list[str]) -> tp.GatewaySystem:
    workdir.mkdir(parents=True)
    return tp.GatewaySystem(workdir, sink, dns, overrides, None)


def trial(
    system: str, run: int, args: argparse.Namespace, base: Path, dns: FakeDns, pg: PgServer | None
) -> Trial:
    result = Trial(system, run, args.messages)
    workdir = base / f"{system}-{run}"
    workdir.mkdir()
    sink = tp.Sink(workdir).start()
    gateways: list[tp.GatewaySystem] = []
    database = ""
    try:
        count = 2 if system == "pg2" else 1
        common = list(args.set)
        if system.startswith("pg"):
            assert pg is not None
            database = pg.create_database()
            common.append(f"store.url={json.dumps(pg.url(database))}")
        for i in range(count):
            node = [*common, f'relay.node_id="bench-node-{i + 1}"']
            gateways.append(_gateway(workdir / f"node{i + 1}", sink, dns, node))
        for gateway in gateways:
            gateway.start()
        cpu_before = sum(g.cpu_seconds() or 0.0 for g in gateways)

        # The load: one smtp-source per node, the sessions and messages split evenly.
        shares = [
            args.messages // count + (1 if i < args.messages % count else 0) for i in range(count)
        ]
        sessions = max(1, args.sessions // count)
        outcomes: list[tuple[float, str]] = [(0.0, "")] * count
        started = time.monotonic()

        def load(i: int) -> None:
            outcomes[i] = tp.smtp_source(
                gateways[i].port,
                shares[i],
                sessions,
                1,
                True,
                args.timeout,
                f"{system} node {i + 1}",
                sink,
            )

        threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(args.timeout + 30)
        accepted = time.monotonic()
        errors = [err for _, err in outcomes if err]
        if errors or any(t.is_alive() for t in threads):
            result.error = "; ".join(errors) or "smtp-source hung"
            return result
        result.accept_rate = args.messages / (accepted - started)
        arrived = sink.wait_for(args.messages, args.timeout, system, started)
        if arrived is None:
            result.error = f"sink counted {sink.messages}/{args.messages} in {args.timeout:.0f}s"
            return result
        result.e2e_rate = args.messages / (arrived - started)
        cpu = sum(g.cpu_seconds() or 0.0 for g in gateways) - cpu_before
        result.cpu_ms = cpu * 1000 / args.messages
        # The sink counts a message before its gateway has recorded it sent: wait (bounded).
        deadline = time.monotonic() + 30
        while True:
            result.error = check_done(system, gateways[0], pg, database, args.messages)
            if not result.error or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return result
    finally:
        for gateway in gateways:
            gateway.stop()
        sink.stop()
        if pg is not None and database:
            with contextlib.suppress(Exception):
                pg.drop_database(database)


def check_done(
    system: str, gateway: tp.GatewaySystem, pg: PgServer | None, database: str, messages: int
) -> str:
    """Empty when the store shows every recipient sent, else what it shows."""
    if not system.startswith("pg"):
        return gateway.check_done(messages, 1)
    assert pg is not None
    rows = dict(pg.fetch(database, "SELECT status, count(*) FROM recipients GROUP BY status"))
    return "" if rows == {"sent": messages} else f"recipients by status {rows}"


def fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", "-n", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=20, help="in total, split over nodes")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--systems", default="sqlite1,pg2", help=f"of {','.join(SYSTEMS)}")
    parser.add_argument("--timeout", type=float, default=0, help="seconds (default 120 + N/20)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=TOML",
        help="a config override for every gateway, e.g. relay.concurrency=50",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        args.timeout = 120 + args.messages / 20
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in SYSTEMS:
            parser.error(f"unknown system {s!r}")
    tp.ensure_postfix()
    if not tp.GATEWAY_BIN.exists():
        sys.exit(f"{tp.GATEWAY_BIN} missing: run python3 dev.py test first")

    base = Path(tempfile.mkdtemp(prefix="gateway-two-nodes-"))
    base.chmod(0o755)
    dns = FakeDns()
    pg: PgServer | None = None
    trials: list[Trial] = []
    try:
        dns.start()
        dns.add_mx(tp.DOMAIN, 10, tp.MX_NAME, ttl=86400)
        dns.add_a(tp.MX_NAME, "127.0.0.1", ttl=86400)
        if any(s.startswith("pg") for s in systems):
            pg = PgServer().start()
        tp.log(
            f"two_nodes: N={args.messages} x {tp.MESSAGE_BYTES} B, {args.sessions} sessions,"
            f" systems {systems}, {args.runs} runs, {os.cpu_count()} CPUs, tmp {base}"
        )
        for run in range(1, args.runs + 1):
            order = systems[(run - 1) % len(systems) :] + systems[: (run - 1) % len(systems)]
            for system in order:
                t = trial(system, run, args, base, dns, pg)
                trials.append(t)
                print(
                    f"{t.system:8} run {t.run}: accept {fmt(t.accept_rate)} msg/s,"
                    f" e2e {fmt(t.e2e_rate)} msg/s, gateway cpu {fmt(t.cpu_ms, '.2f')} ms/msg"
                    + (f"  ERROR {t.error}" if t.error else ""),
                    flush=True,
                )
        medians: dict[str, dict[str, float]] = {}
        for system in systems:
            ok = [t for t in trials if t.system == system and not t.error]
            if ok:
                medians[system] = {
                    "accept": statistics.median(t.accept_rate or 0.0 for t in ok),
                    "e2e": statistics.median(t.e2e_rate or 0.0 for t in ok),
                }
                print(
                    f"median {system:8}: accept {medians[system]['accept']:.0f} msg/s,"
                    f" e2e {medians[system]['e2e']:.0f} msg/s",
                    flush=True,
                )
        if "sqlite1" in medians:
            for other in ("pg1", "pg2"):
                if other in medians:
                    print(
                        f"ratio {other}/sqlite1: accept"
                        f" {medians[other]['accept'] / medians['sqlite1']['accept']:.2f},"
                        f" e2e {medians[other]['e2e'] / medians['sqlite1']['e2e']:.2f}",
                        flush=True,
                    )
    finally:
        dns.stop()
        if pg is not None:
            pg.destroy()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            tp.log(f"kept {base}")
    return 1 if any(t.error for t in trials) else 0


if __name__ == "__main__":
    raise SystemExit(main())
