"""Destinations benchmark (issue 11 item 5): a realistic internet on loopback.

One command from the project root::

    .venv/bin/python bench/destinations.py [--messages 1000] [--seed 1]
                                           [--only gateway|postfix]
                                           [--tarpit-only [--tarpit-shared]] [--hold]
                                           [--timeout S] [--json FILE] [--gateway-src DIR]

Everything runs on 127.0.0.0/8 and is bounded in count and time. The benchmark builds a
small internet (``bench/mx_farm.py`` serves it): MX hosts on ``127.0.x.y`` addresses, all
on one port (``relay.mx_port``), named like the real ones, so that domains hosted by one
provider share MX host names (gmail.com on ``gmail-smtp-in.l.google.com``, outlook.com
and hotmail.com on one Microsoft set, company domains on Google Workspace's
``aspmx.l.google.com``, on Microsoft 365, on Brazilian hosting companies, or on their own
``mail.<domain>``). A ``FakeDns`` (``tests/fakes/dns_server.py``) answers MX and A for
them. Behaviours per site: fast; greeting after 20 s; tarpit (accepts TCP, never greets);
connection refused; ``421`` beyond 8 concurrent connections from one client; greylisting
(``451`` to the first attempt of each sender/recipient pair, and to any other within 30 s
of it); ``452`` after 50 recipients of a transaction; ``250`` to the final dot 2 s late.

Traffic, shaped like a Brazilian billing platform: ~45 % gmail.com, 20 % outlook.com and
hotmail.com, 5 % yahoo.com, 8 % uol.com.br and bol.com.br, 3 % terra.com.br, 19 % over
200 company domains (Zipf weights), some of them unhealthy; one recipient per message,
plus two 60-recipient messages to the company that answers ``452`` after 50.
``--tarpit-only`` is the issue's headline scenario instead: 300 messages to 3 tarpit
destinations (their own MX each; ``--tarpit-shared``: the 3 domains of one hosting company,
one MX host), then 30 to gmail.com.

The systems, one after the other in the same run, each on a fresh internet (greylisting
forgets everything) and a fresh temporary directory:

* ``gateway``: ``.venv/bin/gateway --config <tmp>/gateway.toml serve`` (``GatewaySystem``
  of ``bench/throughput.py``: SQLite store in the temp dir, ``smtp.hostname`` set, loopback
  trusted, DNS from the ``FakeDns``) with ``relay.smarthost = ""`` and ``relay.mx_port``
  the farm's port; every other relay setting is the default.
* ``postfix``: a private instance (``PostfixSystem`` of ``bench/throughput.py``: its own
  ``-c`` directory and queue, 127.0.0.1 only, DNS off; the system instance is never
  started), whose ``transport_maps`` route each domain to its MX addresses in preference
  order (``smtp:[127.0.x.y]:port, [127.0.x.z]:port``; domains of one provider get the one
  next-hop string, so Postfix queues them together as the gateway's sites do). Two
  settings differ from Postfix's defaults, so that both systems retry a greylisted
  recipient after about a minute: ``minimal_backoff_time = 60s`` (the gateway's first
  ``relay.retry_intervals``) and ``queue_run_delay = 10s``.

The submitter is the benchmark: ``--sessions`` SMTP connections (smtplib), each message
tagged with an ``X-Bench-Id`` header. Figures per system:

* latency, from the submission's ``250`` (taken by the submitter) to the ``250`` the MX
  sends after the final dot (taken by the farm), both on this process's monotonic clock:
  p50/p99 over the healthy destinations (fast, slow ``250``, ``421`` beyond 8, ``452``
  beyond 50: they take every message at the first attempt from a polite client), and per
  behaviour;
* drain: time from the first submission until every deliverable recipient (all but the
  tarpit and refused destinations) has arrived, or how many had within ``--timeout``. A
  system's phase ends when it has drained (``--hold``, on with ``--tarpit-only``: at
  ``--timeout`` anyway, so that both systems are watched for as long);
* connections per site: opened, most at once (per site and per MX address), next to the
  system's configured limit;
* connection attempts to unhealthy sites: counted by the farm where something listens;
  for refused destinations, the attempts the system recorded (gateway deferral events,
  one per transaction; Postfix ``status=deferred`` log lines that are not "delivery
  temporarily suspended");
* deferrals by cause, from the system's own records (gateway: ``events`` rows of type
  ``deferred`` in its SQLite store; Postfix: ``status=deferred`` lines of its maillog).
  *Fabricated* deferrals are those whose text says "too many connections" while no
  destination sent such a reply: the farm records every reply it sends, and a deferral
  whose text contains none of them was made up by the system;
* duplicates: a (message, recipient) that arrived twice.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import mx_farm  # noqa: E402
import throughput  # noqa: E402
from mx_farm import Farm, Site  # noqa: E402
from throughput import free_port, log, percentile  # noqa: E402

from tests.fakes.dns_server import FakeDns  # noqa: E402  (on sys.path through throughput)

SENDER = "cobranca@faturas.example"
BODY_BYTES = 5120
HEALTHY = (mx_farm.FAST, mx_farm.SLOW_DATA, mx_farm.CONC421, mx_farm.RCPT452)
UNDELIVERABLE = (mx_farm.TARPIT, mx_farm.REFUSED)
UNHEALTHY = (mx_farm.TARPIT, mx_farm.REFUSED, mx_farm.SLOW_GREETING, mx_farm.GREYLIST)
BULK_RCPTS = 60
TARPIT_MESSAGES = 300
TARPIT_HEALTHY = 30
PROGRESS_S = 5.0
SETTLE_S = 2.0

# Provider shares of the traffic (the rest goes to the company domains).
PROVIDER_WEIGHTS = {
    "gmail.com": 45.0,
    "outlook.com": 10.0,
    "hotmail.com": 10.0,
    "yahoo.com": 5.0,
    "uol.com.br": 5.0,
    "bol.com.br": 3.0,
    "terra.com.br": 3.0,
}
COMPANY_SHARE = 100.0 - sum(PROVIDER_WEIGHTS.values())
COMPANIES = 200
# How the company domains are hosted, and the behaviours of the self-hosted ones.
WORKSPACE, M365, LOCAWEB, KINGHOST, CHEAPHOST = 70, 40, 30, 15, 3
SELF_HOSTED = {
    mx_farm.TARPIT: 3,
    mx_farm.REFUSED: 4,
    mx_farm.SLOW_GREETING: 3,
    mx_farm.GREYLIST: 4,
    mx_farm.RCPT452: 1,
    mx_farm.CONC421: 1,
}
_WORDS_A = (
    "construtora", "clinica", "padaria", "transportes", "agro", "metal", "escola", "farma",
    "auto", "eletro", "moveis", "grafica", "contab", "imobiliaria", "odonto", "tech", "vidros",
    "textil", "laticinios", "logistica",
)  # fmt: skip
_WORDS_B = (
    "sul", "norte", "paulista", "mineira", "carioca", "gaucha", "bahia", "nordeste", "central",
    "brasil", "vale", "serra", "litoral", "campos", "uniao", "alianca", "progresso", "estrela",
)  # fmt: skip


# --- the internet ---------------------------------------------------------------------------


@dataclass
class Destination:
    domain: str
    site: str  # the farm site (its MX host names, joined)
    behaviour: str
    hosting: str  # gmail, outlook, ..., workspace, m365, locaweb, kinghost, cheaphost, self
    weight: float = 0.0


@dataclass
class Internet:
    sites: dict[str, Site] = field(default_factory=dict)
    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # domain -> MX
    addresses: dict[str, list[str]] = field(default_factory=dict)  # MX host -> A
    destinations: dict[str, Destination] = field(default_factory=dict)
    next_hop: dict[str, str] = field(default_factory=dict)  # site -> Postfix next hops


def _addresses() -> Iterator[str]:
    for third in range(0, 4):
        for fourth in range(2, 255):
            yield f"127.0.{third}.{fourth}"


def build_internet(seed: int, port: int) -> Internet:
    """The sites, MX records and domains (deterministic for one ``seed``)."""
    rng = random.Random(seed)  # a benchmark's traffic, not security (S311 is off in bench/)
    net = Internet()
    ips = _addresses()

    def site(hosts: list[tuple[int, str, int]], behaviour: str) -> str:
        """hosts: (preference, name, number of A records)."""
        name = ",".join(sorted({h for _, h, _ in hosts}))
        if name in net.sites:
            return name
        addresses: list[str] = []
        hops: list[str] = []
        for _, host, count in sorted(hosts):
            if host not in net.addresses:
                net.addresses[host] = [next(ips) for _ in range(count)]
            addresses += net.addresses[host]
            hops += [f"[{a}]:{port}" for a in net.addresses[host]]
        net.sites[name] = Site(name, behaviour, tuple(addresses))
        net.next_hop[name] = "smtp:" + ", ".join(hops)
        return name

    def domain(name: str, hosts: list[tuple[int, str, int]], behaviour: str, hosting: str) -> None:
        net.mx[name] = [(pref, host) for pref, host, _ in hosts]
        net.destinations[name] = Destination(name, site(hosts, behaviour), behaviour, hosting)

    google = [(5, "gmail-smtp-in.l.google.com", 1)] + [
        (10 * i, f"alt{i}.gmail-smtp-in.l.google.com", 1) for i in range(1, 5)
    ]
    domain("gmail.com", google, mx_farm.FAST, "gmail")
    microsoft = [(10, f"mx{i}.olc.protection.outlook.com", 1) for i in range(1, 5)]
    domain("outlook.com", microsoft, mx_farm.CONC421, "outlook")
    domain("hotmail.com", microsoft, mx_farm.CONC421, "outlook")
    yahoo = [(1, f"mta{i}.am0.yahoodns.net", 1) for i in (5, 6, 7)]
    domain("yahoo.com", yahoo, mx_farm.SLOW_DATA, "yahoo")
    uol = [(10, "mx.uol.com.br", 2)]
    domain("uol.com.br", uol, mx_farm.GREYLIST, "uol")
    domain("bol.com.br", uol, mx_farm.GREYLIST, "uol")
    domain("terra.com.br", [(10, "mx.terra.com.br", 2)], mx_farm.FAST, "terra")

    names: list[str] = []
    while len(names) < COMPANIES:  # bounded: 20 x 18 x 2 candidate names
        name = f"{rng.choice(_WORDS_A)}{rng.choice(_WORDS_B)}.{rng.choice(('com.br', 'com'))}"
        if name not in names:
            names.append(name)
    hosting = (
        ["workspace"] * WORKSPACE
        + ["m365"] * M365
        + ["locaweb"] * LOCAWEB
        + ["kinghost"] * KINGHOST
        + ["cheaphost"] * CHEAPHOST
    )
    self_behaviours = [b for b, n in SELF_HOSTED.items() for _ in range(n)]
    hosting += ["self"] * (COMPANIES - len(hosting))
    self_behaviours += [mx_farm.FAST] * (hosting.count("self") - len(self_behaviours))
    rng.shuffle(hosting)
    rng.shuffle(self_behaviours)
    workspace = [(1, "aspmx.l.google.com", 1)] + [
        (5 * (1 + i // 2), f"alt{i}.aspmx.l.google.com", 1) for i in range(1, 5)
    ]
    for name, where in zip(names, hosting, strict=True):
        if where == "workspace":
            domain(name, workspace, mx_farm.FAST, where)
        elif where == "m365":
            label = name.replace(".", "-")
            domain(name, [(0, f"{label}.mail.protection.outlook.com", 2)], mx_farm.FAST, where)
        elif where == "locaweb":
            hosts = [(10, "mx.a.locaweb.com.br", 1), (20, "mx.b.locaweb.com.br", 1)]
            domain(name, hosts, mx_farm.FAST, where)
        elif where == "kinghost":
            domain(name, [(10, "mx.kinghost.net", 1)], mx_farm.FAST, where)
        elif where == "cheaphost":  # a small hosting company whose MX went dark
            domain(name, [(10, "mx.hospedagemtop.com.br", 1)], mx_farm.TARPIT, where)
        else:
            domain(name, [(10, f"mail.{name}", 1)], self_behaviours.pop(), where)
    # Zipf weights over the companies, in a random order of rank.
    ranks = list(range(1, COMPANIES + 1))
    rng.shuffle(ranks)
    total = sum(1 / r for r in ranks)
    for name, rank in zip(names, ranks, strict=True):
        net.destinations[name].weight = COMPANY_SHARE * (1 / rank) / total
    for name, weight in PROVIDER_WEIGHTS.items():
        net.destinations[name].weight = weight
    return net


def start_dns(net: Internet) -> FakeDns:
    dns = FakeDns().start()
    for name, mxs in net.mx.items():
        for pref, host in mxs:
            dns.add_mx(name, pref, host, ttl=86400)
    for host, addresses in net.addresses.items():
        for address in addresses:
            dns.add_a(host, address, ttl=86400)
    return dns


# --- the traffic ----------------------------------------------------------------------------


@dataclass
class Message:
    id: str
    rcpts: list[str]
    domain: str


def mixed_traffic(net: Internet, count: int, seed: int) -> list[Message]:
    rng = random.Random(seed + 1)
    domains = list(net.destinations)
    weights = [net.destinations[d].weight for d in domains]
    out: list[Message] = []
    bulk = [d for d in domains if net.destinations[d].behaviour == mx_farm.RCPT452]
    if bulk and count >= 100:  # two circulars to every employee of one company
        for i in range(2):
            rcpts = [f"financeiro{j:02d}.b{i}@{bulk[0]}" for j in range(BULK_RCPTS)]
            out.append(Message(f"b{i}", rcpts, bulk[0]))
    for i in range(count - len(out)):
        d = rng.choices(domains, weights)[0]
        out.append(Message(f"m{i:06d}", [f"cliente{i:06d}@{d}"], d))
    rng.shuffle(out)
    return out


def tarpit_traffic(
    net: Internet, shared: bool = False
) -> tuple[list[Message], list[Message], list[str]]:
    """(tarpit messages, healthy messages, the tarpit domains): three self-hosted tarpit
    domains, or (``shared``) the three domains of the hosting company whose MX is one."""
    tarpits = sorted(
        d.domain
        for d in net.destinations.values()
        if d.behaviour == mx_farm.TARPIT and d.hosting == ("cheaphost" if shared else "self")
    )[:3]
    first = [
        Message(f"t{i:05d}", [f"cliente{i:05d}@{d}"], d)
        for i in range(TARPIT_MESSAGES)
        for d in [tarpits[i % len(tarpits)]]
    ]
    then = [
        Message(f"h{i:05d}", [f"cliente{i:05d}@gmail.com"], "gmail.com")
        for i in range(TARPIT_HEALTHY)
    ]
    return first, then, tarpits


def content(message: Message) -> bytes:
    head = (
        f"From: Cobranca <{SENDER}>\r\nTo: <{message.rcpts[0]}>\r\n"
        f"Subject: Fatura {message.id} disponivel\r\n"
        f"Message-ID: <{message.id}.{time.time_ns()}@faturas.example>\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"X-Bench-Id: {message.id}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    line = "Sua fatura esta disponivel. Valor: R$ 123,45. Vencimento: 10/12.\r\n"
    body = line * (BODY_BYTES // len(line))
    return (head + body).encode()


@dataclass
class Submission:
    accepted: dict[str, float] = field(default_factory=dict)  # message id -> time of 250
    refused: dict[str, str] = field(default_factory=dict)  # "id rcpt" -> reply
    started: float = 0.0
    elapsed: float = 0.0


def submit(
    port: int, messages: list[Message], sessions: int, timeout: float, label: str, into: Submission
) -> None:
    """Send ``messages`` over ``sessions`` connections; the 250 times go into ``into``."""
    deadline = time.monotonic() + timeout
    todo = list(reversed(messages))
    lock = threading.Lock()
    start = time.monotonic()
    into.started = into.started or start

    def worker() -> None:
        smtp: smtplib.SMTP | None = None
        try:
            for _ in range(len(messages) + 1):
                with lock:
                    if not todo or time.monotonic() > deadline:
                        return
                    message = todo.pop()
                for _attempt in range(3):  # bounded reconnects
                    try:
                        if smtp is None:
                            smtp = smtplib.SMTP("127.0.0.1", port, timeout=60)
                            smtp.ehlo("app.faturas.example")
                        refused = smtp.sendmail(SENDER, message.rcpts, content(message))
                        done = time.monotonic()
                        with lock:
                            into.accepted[message.id] = done
                            for rcpt, reply in refused.items():
                                into.refused[f"{message.id} {rcpt}"] = f"{reply[0]} {reply[1]!r}"
                        break
                    except smtplib.SMTPRecipientsRefused as exc:
                        with lock:
                            for rcpt, reply in exc.recipients.items():
                                into.refused[f"{message.id} {rcpt}"] = f"{reply[0]} {reply[1]!r}"
                        break
                    except smtplib.SMTPResponseException as exc:
                        with lock:
                            for rcpt in message.rcpts:
                                into.refused[f"{message.id} {rcpt}"] = f"{exc.smtp_code}"
                        break
                    except (OSError, smtplib.SMTPException):
                        if smtp is not None:
                            with contextlib.suppress(Exception):
                                smtp.close()
                        smtp = None
                        time.sleep(0.2)
        finally:
            if smtp is not None:
                with contextlib.suppress(Exception):
                    smtp.quit()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(sessions)]
    for t in threads:
        t.start()
    next_report = start + PROGRESS_S
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline + 65:
        for t in threads:
            t.join(timeout=0.2)
        if time.monotonic() >= next_report:
            log(f"  {label}: submitted {len(into.accepted)}/{len(messages)}")
            next_report += PROGRESS_S
    into.elapsed += time.monotonic() - start


# --- the systems ----------------------------------------------------------------------------


class Gateway:
    name = "gateway"

    def __init__(
        self,
        workdir: Path,
        dns: FakeDns,
        mx_port: int,
        src: Path | None,
        settings: list[str] | None = None,
    ) -> None:
        overrides = ['relay.smarthost=""', f"relay.mx_port={mx_port}", *(settings or [])]
        self.src = src
        self.system = throughput.GatewaySystem(
            workdir, throughput.Sink(workdir), dns, overrides, None, processes=1
        )
        self.port = self.system.port

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)
        return env

    def start(self) -> None:
        if self.src is None:
            self.system.start()
            return
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(self.src)  # GatewaySystem passes os.environ on
        try:
            self.system.start()
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved

    def stop(self) -> None:
        # The measurement is over: no need to wait out relay.shutdown_grace on tarpits.
        for proc in self.system.procs:
            throughput.stop_process(proc, timeout=5)
        self.system.stop()

    def limit(self) -> str:
        # Read by the gateway's own config loader, from the tree the gateway runs from.
        code = (
            "import sys; from gateway.config import load; r = load(sys.argv[1], env={}).relay;"
            " print(r.per_destination_concurrency, r.concurrency)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(self.system.workdir / "gateway.toml")],
            capture_output=True,
            timeout=60,
            check=False,
            env=self._env(),
            cwd=self.system.workdir,  # not the project root: PYTHONPATH's tree is the one
        )
        if out.returncode != 0:
            return "unknown (the config could not be loaded)"
        per_destination, total = out.stdout.decode().split()
        return (
            f"relay.per_destination_concurrency = {per_destination}, "
            f"relay.concurrency = {total} (as the gateway's config loader reads them)"
        )

    def deferrals(self) -> list[tuple[str, str, str]]:
        """(recipient, text, attempt key) of every deferral recorded."""
        db = self.system.db
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
            rows = c.execute(
                "SELECT address, coalesce(reply_code, ''), coalesce(enhanced, ''), text,"
                " queue_id, at FROM events WHERE type = 'deferred'"
            ).fetchall()
        return [
            (str(a), f"{code} {enh} {text}".strip(), f"{qid} {at:.3f}")
            for a, code, enh, text, qid, at in rows
        ]

    def statuses(self) -> dict[str, int]:
        db = self.system.db
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
            rows = c.execute("SELECT status, count(*) FROM recipients GROUP BY status").fetchall()
        return {str(s): int(n) for s, n in rows}


_MAILLOG = re.compile(r": (\w+): to=<([^>]*)>,.* status=(\w+) \((.*)\)\s*$")


class Postfix:
    name = "postfix"

    def __init__(self, workdir: Path, net: Internet) -> None:
        self.net = net
        self.system = throughput.PostfixSystem(workdir, throughput.Sink(workdir))
        self.port = self.system.port

    def _postconf(self, *args: str) -> str:
        out = subprocess.run(
            ["postconf", "-c", str(self.system.dir), *args],
            capture_output=True,
            timeout=60,
            check=True,
        )
        return out.stdout.decode().strip()

    def start(self) -> None:
        self.system.start()
        table = self.system.dir / "transport"
        table.write_text(
            "".join(
                f"{d.domain} {self.net.next_hop[d.site]}\n" for d in self.net.destinations.values()
            )
        )
        self._postconf(
            "-e",
            f"transport_maps = texthash:{table}",
            "minimal_backoff_time = 60s",
            "queue_run_delay = 10s",
        )
        subprocess.run(
            ["postfix", "-c", str(self.system.dir), "reload"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        time.sleep(1.0)  # the master restarts qmgr and the servers with the new settings

    def stop(self) -> None:
        self.system.stop()

    def limit(self) -> str:
        limit = self._postconf("-h", "default_destination_concurrency_limit")
        initial = self._postconf("-h", "initial_destination_concurrency")
        return (
            f"default_destination_concurrency_limit = {limit} (per next hop), "
            f"initial_destination_concurrency = {initial}"
        )

    def deferrals(self) -> list[tuple[str, str, str]]:
        path = self.system.dir / "maillog"
        out: list[tuple[str, str, str]] = []
        if not path.exists():
            return out
        for number, text in enumerate(path.read_text(errors="replace").splitlines()):
            m = _MAILLOG.search(text)
            if m and m.group(3) == "deferred":
                out.append((m.group(2), m.group(4), f"{m.group(1)} {number}"))
        return out

    def statuses(self) -> dict[str, int]:
        path = self.system.dir / "maillog"
        counts: Counter[str] = Counter()
        if path.exists():
            for text in path.read_text(errors="replace").splitlines():
                if m := _MAILLOG.search(text):
                    counts[m.group(3)] += 1
        return dict(counts)


# --- one phase ------------------------------------------------------------------------------


@dataclass
class Result:
    system: str
    scenario: str
    messages: int = 0
    recipients: int = 0
    submit_s: float = 0.0
    refused_at_submission: int = 0
    deliverable: int = 0
    arrived_deliverable: int = 0
    drain_s: float | None = None
    phase_s: float = 0.0
    healthy: dict[str, Any] = field(default_factory=dict)
    by_behaviour: dict[str, dict[str, Any]] = field(default_factory=dict)
    limit: str = ""
    sites: list[dict[str, Any]] = field(default_factory=list)
    unhealthy_attempts: list[dict[str, Any]] = field(default_factory=list)
    deferrals: dict[str, int] = field(default_factory=dict)
    fabricated_deferrals: int = 0
    fabricated_examples: list[str] = field(default_factory=list)
    record_statuses: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    error: str = ""


def _latency_summary(values: list[float], expected: int) -> dict[str, Any]:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return {
        "expected": expected,
        "arrived": len(values),
        "p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "p99_ms": None if p99 is None else round(p99 * 1000, 1),
    }


def _cause(text: str, sent: list[str]) -> str:
    low = text.lower()
    if any(s in text for s in sent):
        return "reply from the destination"
    if "suspended" in low:
        return "site suspended, not tried (postfix)"
    if "too many connections" in low:
        return "too many connections, no such reply (fabricated)"
    if "refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    return "other, no reply from the destination"


def run_phase(
    system: Gateway | Postfix,
    farm: Farm,
    net: Internet,
    batches: list[list[Message]],
    args: argparse.Namespace,
    scenario: str,
) -> Result:
    result = Result(system.name, scenario)
    messages = [m for batch in batches for m in batch]
    result.messages = len(messages)
    result.recipients = sum(len(m.rcpts) for m in messages)
    behaviour_of = {d.domain: d.behaviour for d in net.destinations.values()}
    log(f"{system.name}: starting")
    system.start()
    result.limit = system.limit()
    farm.begin(system.name)
    started = time.monotonic()
    deadline = started + args.timeout
    sub = Submission()
    for i, batch in enumerate(batches):
        submit(system.port, batch, args.sessions, args.timeout, f"{system.name} batch {i + 1}", sub)
    result.submit_s = round(sub.elapsed, 2)
    result.refused_at_submission = len(sub.refused)
    if sub.refused:
        log(f"  {system.name}: refused at submission, e.g. {next(iter(sub.refused.items()))}")
    refused = {k.split(" ", 1)[1] for k in sub.refused}
    expected = {
        (m.id, r.lower())
        for m in messages
        if m.id in sub.accepted
        for r in m.rcpts
        if behaviour_of[m.domain] not in UNDELIVERABLE and r not in refused
    }
    result.deliverable = len(expected)
    next_report = time.monotonic() + PROGRESS_S
    while time.monotonic() < deadline:  # bounded by --timeout
        got = {(a.message_id, a.rcpt) for a in farm.snapshot().arrivals}
        if expected <= got and not args.hold:
            break
        if time.monotonic() >= next_report:
            log(
                f"  {system.name}: arrived {len(expected & got)}/{len(expected)} deliverable"
                f" at {time.monotonic() - started:.0f}s"
            )
            next_report += PROGRESS_S
        time.sleep(0.1)
    time.sleep(SETTLE_S)  # the systems write their last records
    record = farm.snapshot()
    result.phase_s = round(time.monotonic() - started, 1)
    result.duplicates = record.duplicates

    first: dict[tuple[str, str], float] = {}
    for a in record.arrivals:
        first.setdefault((a.message_id, a.rcpt), a.at)
    arrived = {k: v for k, v in first.items() if k in expected}
    result.arrived_deliverable = len(arrived)
    if expected and len(arrived) == len(expected):
        result.drain_s = round(max(arrived.values()) - sub.started, 2)
    latency: dict[str, list[float]] = defaultdict(list)
    count: Counter[str] = Counter()
    domain_of = {m.id: m.domain for m in messages}
    for mid, rcpt in expected:
        count[behaviour_of[domain_of[mid]]] += 1
        if (mid, rcpt) in arrived:
            latency[behaviour_of[domain_of[mid]]].append(arrived[(mid, rcpt)] - sub.accepted[mid])
    for behaviour in sorted(count):
        result.by_behaviour[behaviour] = _latency_summary(latency[behaviour], count[behaviour])
    result.healthy = _latency_summary(
        [v for b in HEALTHY for v in latency[b]], sum(count[b] for b in HEALTHY)
    )

    site_domains: dict[str, list[str]] = defaultdict(list)
    for d in net.destinations.values():
        site_domains[d.site].append(d.domain)
    sent_texts = [t.split(" ", 2)[2] for t in record.replies if t.count(" ") >= 2 and t[0] in "45"]
    deferrals = system.deferrals()
    causes: Counter[str] = Counter()
    refused_attempts: dict[str, set[str]] = defaultdict(set)
    for rcpt, text, key in deferrals:
        cause = _cause(text, sent_texts)
        causes[cause] += 1
        if "fabricated" in cause:
            result.fabricated_deferrals += 1
            if len(result.fabricated_examples) < 3:
                result.fabricated_examples.append(f"{rcpt}: {text}")
        dest = net.destinations.get(rcpt.rsplit("@", 1)[-1].lower())
        if dest and dest.behaviour == mx_farm.REFUSED and cause == "connection refused":
            refused_attempts[dest.site].add(key)
    result.deferrals = dict(causes.most_common())
    result.record_statuses = system.statuses()
    for name, site in net.sites.items():
        used = record.connections.get(name, 0) or refused_attempts.get(name)
        if not used:
            continue
        if site.behaviour in UNHEALTHY:
            counted = (
                len(refused_attempts.get(name, ()))
                if site.behaviour == mx_farm.REFUSED
                else record.connections.get(name, 0)
            )
            result.unhealthy_attempts.append(
                {
                    "site": name,
                    "behaviour": site.behaviour,
                    "domains": len(site_domains[name]),
                    "attempts": counted,
                    "counted_by": "system records" if site.behaviour == mx_farm.REFUSED else "farm",
                }
            )
        if record.connections.get(name, 0):
            result.sites.append(
                {
                    "site": name,
                    "behaviour": site.behaviour,
                    "domains": len(site_domains[name]),
                    "connections": record.connections[name],
                    "max_concurrent": record.max_open[name],
                    "max_per_address": max(record.per_address_max[a] for a in site.addresses),
                }
            )
    result.sites.sort(key=lambda s: -s["connections"])
    result.unhealthy_attempts.sort(key=lambda s: (s["behaviour"], -s["attempts"]))
    return result


def run_system(
    kind: str,
    farm: Farm,
    net: Internet,
    dns: FakeDns,
    base: Path,
    batches: list[list[Message]],
    args: argparse.Namespace,
    scenario: str,
) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))
    system: Gateway | Postfix = (
        Gateway(workdir, dns, farm.port, args.gateway_src, args.set)
        if kind == "gateway"
        else Postfix(workdir, net)
    )
    try:
        return run_phase(system, farm, net, batches, args, scenario)
    except Exception as exc:  # one failed system must not lose the other
        log(f"{kind}: failed: {type(exc).__name__}: {exc}")
        return Result(kind, scenario, error=f"{type(exc).__name__}: {exc}")
    finally:
        log(f"{kind}: stopping")
        with contextlib.suppress(Exception):
            system.stop()


# --- reporting ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def report(r: Result, top: int) -> Iterator[str]:
    yield f"=== {r.system} ({r.scenario}) ==="
    if r.error:
        yield f"ERROR {r.error}"
        return
    yield (
        f"submitted {r.messages} messages / {r.recipients} recipients in {r.submit_s:.1f}s, "
        f"{r.refused_at_submission} refused at submission"
    )
    h = r.healthy
    yield (
        f"healthy destinations: {h['arrived']}/{h['expected']} arrived, 250->arrival "
        f"p50 {_ms(h['p50_ms'])}  p99 {_ms(h['p99_ms'])}"
    )
    for behaviour, s in r.by_behaviour.items():
        yield (
            f"  {behaviour:<14} {s['arrived']:>5}/{s['expected']:<5} p50 {_ms(s['p50_ms']):>9}"
            f"  p99 {_ms(s['p99_ms']):>9}"
        )
    drain = f"{r.drain_s:.1f}s" if r.drain_s is not None else "not drained"
    yield (
        f"drain (every deliverable recipient): {drain}; {r.arrived_deliverable}/{r.deliverable}"
        f" arrived within the {r.phase_s:.0f}s phase; duplicates {r.duplicates}"
    )
    yield f"configured limit: {r.limit}"
    yield f"connections per site (top {top} by count; max at once vs the limit above):"
    for s in r.sites[:top]:
        yield (
            f"  {s['connections']:>6} opened  max {s['max_concurrent']:>3} at once"
            f" ({s['max_per_address']:>3} per address)  {s['behaviour']:<13}"
            f" {s['domains']:>3} domain(s)  {s['site'][:70]}"
        )
    yield "connection attempts to unhealthy sites:"
    for s in r.unhealthy_attempts:
        yield (
            f"  {s['attempts']:>6} {s['behaviour']:<13} {s['domains']:>2} domain(s)"
            f"  {s['site'][:60]}  [{s['counted_by']}]"
        )
    yield "deferrals recorded, by cause:"
    for cause, n in r.deferrals.items():
        yield f"  {n:>6} {cause}"
    yield f"fabricated deferrals: {r.fabricated_deferrals}"
    for example in r.fabricated_examples:
        yield f"  e.g. {example[:150]}"
    yield f"records by status: {r.record_statuses}"


# --- main -----------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", "-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=("gateway", "postfix"), default=None)
    parser.add_argument(
        "--tarpit-only",
        action="store_true",
        help=f"{TARPIT_MESSAGES} messages to 3 tarpit destinations, then {TARPIT_HEALTHY} "
        "to gmail.com",
    )
    parser.add_argument(
        "--tarpit-shared",
        action="store_true",
        help="with --tarpit-only: the 3 tarpit domains are hosted by one company, on one MX "
        "host (default: 3 self-hosted domains, 3 MX hosts)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=0,
        help="seconds per system, from the first submission (default: 120; 60 with --tarpit-only)",
    )
    parser.add_argument(
        "--hold",
        action="store_true",
        help="keep each system running for the whole --timeout even once drained, so that "
        "connection attempts are counted over equal windows (on with --tarpit-only)",
    )
    parser.add_argument("--sessions", type=int, default=4, help="submission connections")
    parser.add_argument(
        "--gateway-src",
        type=Path,
        default=None,
        help="run the gateway from the 'gateway' package under this directory (PYTHONPATH), "
        "e.g. a commit unpacked by: git archive HEAD gateway | tar -x -C DIR",
    )
    parser.add_argument("--top", type=int, default=12, help="sites listed per system")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a gateway config setting (TOML value), e.g. --set smtp.workers=1",
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        args.timeout = 60.0 if args.tarpit_only else 120.0
    args.hold = args.hold or args.tarpit_only
    if not 1 <= args.messages <= 100_000:
        parser.error("--messages: 1 to 100000")
    if not 1 <= args.sessions <= 50:
        parser.error("--sessions: 1 to 50")
    kinds = [args.only] if args.only else ["gateway", "postfix"]
    if "postfix" in kinds:
        throughput.ensure_postfix()
    if "gateway" in kinds and not throughput.GATEWAY_BIN.exists():
        sys.exit(f"{throughput.GATEWAY_BIN} missing: run python3 dev.py test first")
    signal.signal(signal.SIGTERM, _on_sigterm)

    base = Path(tempfile.mkdtemp(prefix="gateway-destinations-"))
    base.chmod(0o755)  # the postfix user walks down to its queue
    farm: Farm | None = None
    dns: FakeDns | None = None
    results: list[Result] = []
    try:
        for _attempt in range(20):  # a port free on every MX address
            port = free_port()
            net = build_internet(args.seed, port)
            try:
                farm = Farm(net.sites.values(), port).start()
                break
            except RuntimeError:
                if farm is not None:
                    farm.stop()
                farm = None
        if farm is None:
            sys.exit("no port free on every MX address")
        dns = start_dns(net)
        if args.tarpit_only:
            tarpits, healthy, tarpit_domains = tarpit_traffic(net, args.tarpit_shared)
            batches = [tarpits, healthy]
            scenario = f"tarpit-only: {len(tarpits)} to {', '.join(tarpit_domains)}, then "
            scenario += f"{len(healthy)} to gmail.com"
        else:
            batches = [mixed_traffic(net, args.messages, args.seed)]
            scenario = f"mixed: {args.messages} messages, seed {args.seed}"
        behaviours = Counter(s.behaviour for s in net.sites.values())
        log(
            f"destinations: {len(net.destinations)} domains on {len(net.sites)} sites "
            f"({dict(behaviours)}), {sum(len(s.addresses) for s in net.sites.values())} MX "
            f"addresses on port {port}, DNS {dns.address}; {scenario}; timeout "
            f"{args.timeout:.0f}s per system; tmp {base}"
        )
        for kind in kinds:
            r = run_system(kind, farm, net, dns, base, batches, args, scenario)
            results.append(r)
            for text in report(r, args.top):
                print(text, flush=True)
        by = {r.system: r for r in results if not r.error}
        if "gateway" in by and "postfix" in by:
            g, p = by["gateway"], by["postfix"]
            print("=== gateway vs postfix ===", flush=True)
            for label, gv, pv in (
                ("healthy p50", g.healthy["p50_ms"], p.healthy["p50_ms"]),
                ("healthy p99", g.healthy["p99_ms"], p.healthy["p99_ms"]),
                ("healthy arrived", g.healthy["arrived"], p.healthy["arrived"]),
                ("drain s", g.drain_s, p.drain_s),
                ("deliverable arrived", g.arrived_deliverable, p.arrived_deliverable),
                ("fabricated deferrals", g.fabricated_deferrals, p.fabricated_deferrals),
            ):
                print(f"  {label:<22} gateway {gv!s:>10}   postfix {pv!s:>10}", flush=True)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "scenario": scenario,
                        "seed": args.seed,
                        "timeout_s": args.timeout,
                        "results": [asdict(r) for r in results],
                    },
                    indent=1,
                )
            )
    finally:
        if farm is not None:
            farm.stop()
        if dns is not None:
            dns.stop()
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
