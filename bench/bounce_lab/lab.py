"""The bounce lab: real DSNs from real MTAs, labelled by the scenario that produced them.

Regenerate the committed corpus (as root; not part of CI; a few minutes)::

    .venv/bin/python -m bench.bounce_lab.lab --out tests/data/bounce_lab

What it does, all on loopback:

1. Takes the MTAs from Debian's packages without installing them: ``apt-get download`` and
   ``dpkg -x`` into ``--debs`` (default ``/tmp/bounce-lab-debs``).
2. Re-runs itself in a private mount namespace (``unshare -m``) where ``/etc/resolv.conf``
   points at the lab's DNS (127.0.0.53:53), ``/etc/passwd`` and ``/etc/group`` are private
   copies that add the MTAs' accounts (Debian-exim, opensmtpd, opensmtpq) and ``/var/spool`` is a
   private tmpfs (OpenSMTPD's queue path is compiled in). Nothing outside the namespace
   changes: the system's MTA, its config and its queue are never touched.
3. Starts, per MTA, two private instances with their own config and spool: ``x`` on
   127.0.1.N (the gateway's next hop) and ``y`` on 127.0.2.N (the destination), plus the
   gateway in this process (``tests.scenarios.harness.GatewayHarness``) and a recording SMTP
   hop on 127.0.0.1 that every MTA uses for the gateway's return-path domain: it keeps each
   report's bytes and passes them on to the gateway's SMTP port from 127.0.0.9, so the
   gateway's bounce ingress reads every report end to end.
4. Sends one message per scenario per MTA through the gateway, waits (bounded) for each
   report, checks what the gateway recorded, and writes ``emails/<mta>-<scenario>.eml``,
   ``labels.jsonl`` and ``lab-run.json`` (versions, what the ingress recorded) to ``--out``.
   With ``--scenarios a,b`` only those are made: the other rows of ``labels.jsonl`` and
   ``lab-run.json`` and their reports in ``--out`` are kept as they are.

The MTAs run as root with private config and spool: Postfix's master(8) and OpenSMTPD's
smtpd(8) refuse to start otherwise, and Exim's Debian build needs its compiled-in account;
each then drops to its own unprivileged account for the work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import importlib  # noqa: E402

from bench.bounce_lab.scenarios import (  # noqa: E402
    HOSTS,
    LAB_DNS,
    RBL_ZONE,
    SCENARIOS,
    Scenario,
)
from gateway.core.model import Category  # noqa: E402

PACKAGES = ("postfix", "exim4-daemon-light", "libidn12", "opensmtpd")
MX_PORT = 2525
EXTRA_USERS = (
    ("Debian-exim", 64990),
    ("opensmtpd", 64991),
    ("opensmtpq", 64992),
)


def fetch(debs: Path) -> Path:
    """``apt-get download`` + ``dpkg -x`` the MTAs into ``debs/root`` (once)."""
    root = debs / "root"
    if (root / "usr/sbin/exim4").exists() and (root / "usr/sbin/smtpd").exists():
        return root
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def private_etc(work: Path) -> None:
    """Inside the namespace: bind private resolv.conf, passwd and group over /etc's."""
    etc = work / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text(f"nameserver {LAB_DNS}\noptions timeout:1 attempts:1\n")
    passwd = Path("/etc/passwd").read_text()
    group = Path("/etc/group").read_text()
    for name, uid in EXTRA_USERS:
        if f"\n{name}:" not in "\n" + passwd:
            passwd += f"{name}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n"
            group += f"{name}:x:{uid}:\n"
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text(group)
    for name in ("resolv.conf", "passwd", "group"):
        subprocess.run(["mount", "--bind", str(etc / name), f"/etc/{name}"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/var/spool"], check=True)


class Recorder:
    """An SMTP hop that keeps every report and hands it on to the gateway."""

    def __init__(self, gateway_port: int) -> None:
        self.gateway_port = gateway_port
        self.reports: list[tuple[str, list[str], bytes, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content
        mail_from: str = envelope.mail_from
        rcpts: list[str] = list(envelope.rcpt_tos)

        def forward() -> str:
            with smtplib.SMTP(
                "127.0.0.1", self.gateway_port, timeout=20, source_address=("127.0.0.9", 0)
            ) as client:
                client.ehlo("lab-recorder.test")
                client.mail(mail_from)
                for rcpt in rcpts:
                    client.rcpt(rcpt)
                code, text = client.data(content)
                return f"{code} {text.decode(errors='replace')}"

        reply = await asyncio.to_thread(forward)
        self.reports.append((mail_from, rcpts, content, reply))
        return reply if reply.startswith("250") else "451 4.3.0 gateway refused: " + reply


def message(scenario: Scenario, mta: str) -> bytes:
    rcpt = scenario.recipient(mta)
    body = "Hello from the bounce lab.\r\n"
    if scenario.big:
        body += "A line of filler to make the message larger than the limit.\r\n" * 330
    return (
        f"From: Lab <app@sender.example>\r\nTo: {rcpt}\r\n"
        f"Subject: Lab {mta} {scenario.name}\r\n"
        f"Message-ID: <{scenario.name}.{mta}@sender.example>\r\n"
        f"\r\n{body}"
    ).encode()


async def run(args: argparse.Namespace, root: Path, work: Path) -> int:
    from aiosmtpd.controller import Controller

    from tests.fakes.dns_server import FakeDns
    from tests.fakes.mx import free_port
    from tests.scenarios.harness import GatewayHarness

    mtas = [m for m in args.mta.split(",") if m]
    lab_dns = FixedPortDns(LAB_DNS, 53).start()
    gw_dns = FakeDns().start()
    wanted = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios.split(",")]
    for mta in mtas:
        x_host, _y = HOSTS[mta]
        gw_dns.add_a(f"mx-x.{mta}.lab", x_host)
        # The block list lists every relay x (only rbl_listed's destination asks it).
        lab_dns.add_a(".".join(reversed(x_host.split("."))) + f".{RBL_ZONE}", "127.0.0.2")
        for s in SCENARIOS:
            gw_dns.add_mx(s.domain(mta), 10, f"mx-x.{mta}.lab")
            if s.name == "dns_servfail":
                lab_dns.set_servfail(s.domain(mta))
    harness = GatewayHarness(gw_dns, work, mx_port=MX_PORT)
    await harness.start(smtp={"trusted_networks": ["127.0.0.1/32"]})
    recorder = Recorder(harness.port)
    proxy_port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=proxy_port)
    controller.start()
    procs: list[subprocess.Popen[bytes]] = []
    versions = {}
    try:
        for mta in mtas:
            module = importlib.import_module(f"bench.bounce_lab.{mta}")
            for folder in module.write(work, root, MX_PORT, proxy_port):
                procs.append(module.start(folder, root))
            versions[mta] = module.version(root)
        await asyncio.sleep(3)
        for proc in procs:
            if proc.poll() is not None:
                print(f"an MTA exited at start: {proc.args}", file=sys.stderr)
        skipped = {
            m: getattr(importlib.import_module(f"bench.bounce_lab.{m}"), "SKIPPED", {})
            for m in mtas
        }
        expected = {
            s.recipient(m): (m, s) for m in mtas for s in wanted if s.name not in skipped[m]
        }
        for rcpt, (mta, s) in expected.items():
            refused = await harness.send([rcpt], body=message(s, mta))
            assert refused == {}, refused
        deadline = time.monotonic() + args.timeout
        found: dict[str, bytes] = {}
        while time.monotonic() < deadline and len(found) < len(expected):
            for _from, _rcpts, content, _reply in recorder.reports:
                for rcpt in expected:
                    if rcpt not in found and rcpt.encode() in content:
                        found[rcpt] = content
            await asyncio.sleep(1)
        await asyncio.sleep(2)
        out = Path(args.out)
        (out / "emails").mkdir(parents=True, exist_ok=True)
        labels, ingress, old = (
            kept(out, {s.name for s in wanted}) if args.scenarios else ([], {}, {})
        )
        for rcpt, (mta, s) in expected.items():
            module = importlib.import_module(f"bench.bounce_lab.{mta}")
            events = await harness.events(rcpt)
            recorded = [
                {"type": str(e.type), "category": str(e.category or ""), "reason": str(e.reason)}
                for e in events
            ]
            ingress[rcpt] = recorded
            if rcpt not in found:
                print(f"no report for {mta} {s.name} ({rcpt})", file=sys.stderr)
                continue
            name = f"emails/{mta}-{s.name.replace('_', '-')}.eml"
            (out / name).write_bytes(found[rcpt])
            labels.append(
                {
                    "file": name,
                    "recipient": rcpt,
                    "scenario": s.name,
                    "category": s.category,
                    "category7": Category(s.category).category7,
                    "source": f"lab-{mta}",
                    "mta": versions[mta],
                    "how": getattr(module, "HOW", {}).get(s.name, s.what),
                }
                | (
                    {"ambiguous": why}
                    if (why := getattr(module, "AMBIGUOUS", {}).get(s.name))
                    else {}
                )
            )
        with (out / "labels.jsonl").open("w") as handle:
            for row in labels:
                handle.write(json.dumps(row) + "\n")
        (out / "lab-run.json").write_text(
            json.dumps(
                {
                    "versions": old.get("versions", {}) | versions,
                    "skipped": old.get("skipped", {}) | skipped,
                    "ingress": ingress,
                },
                indent=1,
            )
            + "\n"
        )
        made = sum(1 for row in labels if row["recipient"] in expected)
        print(f"{made} of {len(expected)} reports written to {out}")
        return 0 if made == len(expected) else 1
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        controller.stop()
        await harness.stop()
        harness.close()
        lab_dns.stop()
        gw_dns.stop()


def kept(
    out: Path, remade: set[str]
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """With ``--scenarios``: the committed rows and ingress records of the other scenarios,
    and the committed run (versions, skipped) for the MTAs not run this time.

    Their reports are not regenerated, so they stay byte for byte as committed.
    """
    rows = [
        json.loads(line)
        for line in (out / "labels.jsonl").read_text().splitlines()
        if line and json.loads(line)["scenario"] not in remade
    ]
    run = json.loads((out / "lab-run.json").read_text())
    keep = {row["recipient"] for row in rows}
    ingress = {rcpt: events for rcpt, events in run["ingress"].items() if rcpt in keep}
    return rows, ingress, run


def FixedPortDns(host: str, port: int) -> Any:
    """tests.fakes.dns_server.FakeDns on a fixed address and port (resolv.conf has no port)."""
    import socketserver

    from tests.fakes import dns_server

    class Fixed(dns_server.FakeDns):
        def start(self) -> Any:
            orig = dns_server._UdpServer.__init__

            def bind(server: Any, address: Any, handler: Any) -> None:
                socketserver.ThreadingUDPServer.__init__(server, (host, port), handler)

            dns_server._UdpServer.__init__ = bind  # type: ignore[method-assign]
            try:
                return super().start()
            finally:
                dns_server._UdpServer.__init__ = orig  # type: ignore[method-assign]

    return Fixed(host)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "tests/data/bounce_lab"))
    parser.add_argument("--debs", default="/tmp/bounce-lab-debs")
    parser.add_argument("--mta", default="postfix,exim,opensmtpd")
    parser.add_argument("--timeout", type=float, default=150)
    parser.add_argument(
        "--scenarios",
        default="",
        help="comma-separated scenarios to make (default all); the committed reports of the "
        "others are kept as they are, and labels.jsonl and lab-run.json updated",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the lab runs as root (see the module's docstring)", file=sys.stderr)
        return 2
    if os.environ.get("BOUNCE_LAB_NS") != "1":
        fetch(Path(args.debs))
        env = dict(os.environ, BOUNCE_LAB_NS="1")
        cmd = [
            "unshare",
            "-m",
            "--propagation",
            "private",
            sys.executable,
            "-m",
            "bench.bounce_lab.lab",
            *sys.argv[1:],
        ]
        return subprocess.run(cmd, env=env, cwd=ROOT, check=False).returncode
    root = Path(args.debs) / "root"
    work = Path(tempfile.mkdtemp(prefix="bounce-lab-"))
    os.chmod(work, 0o755)
    private_etc(work)
    try:
        return asyncio.run(run(args, root, work))
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
