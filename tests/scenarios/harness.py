"""An in-process gateway for scenario tests: real SMTP in, real SMTP out, DNS on loopback.

``GatewayHarness`` builds a config around a ``FakeDns`` and a fixed MX port shared by the
fake MX servers on 127.0.0.2, 127.0.0.3, …, starts the gateway in the test's event loop,
and offers helpers to send mail and read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway import config as config_module
from gateway.app import Gateway, build, run, start_listeners
from gateway.core.model import Event, Status
from gateway.core.ports import Clock, RecipientView
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, free_port
from tests.scenarios.gateway_hooks import HOOKS
from tests.waiting import wait_until

SECRET = "test-bounce-secret-0123456789"
HOSTNAME = "gateway.test"


def base_config(
    dns: FakeDns, tmp: Path, mx_port: int, **sections: dict[str, Any]
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "smtp": {
            "listen": "127.0.0.1:0",
            "hostname": HOSTNAME,
            "trusted_networks": ["127.0.0.0/8"],
            # One process: a test that kills or hooks "the gateway" means that process
            # (tests/scenarios/test_workers.py runs several).
            "workers": 1,
        },
        "store": {"path": str(tmp / "gateway.db")},
        "dns": {"nameservers": [dns.address], "timeout": "2s"},
        "relay": {
            "mx_port": mx_port,
            "retry_intervals": ["1s"],
            "connect_timeout": "2s",
            "command_timeout": "3s",
            "data_timeout": "3s",
            "idle_timeout": "1s",
            "shutdown_grace": "3s",
        },
        "bounce": {"domain": "bounces.gateway.test", "secret": SECRET},
        "log": {"level": "warning"},
        # port 0: parallel runs (and a gateway on this machine) must not collide on 8025
        "admin": {"listen": "127.0.0.1:0"},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def _config_with(
    dns: FakeDns, tmp: Path, mx_port: int, sections: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """``base_config`` with ``sections`` merged in, a ``dns`` section included (the name
    ``base_config`` cannot take as a keyword: its first parameter is called ``dns``)."""
    others = {name: values for name, values in sections.items() if name != "dns"}
    raw = base_config(dns, tmp, mx_port, **others)
    raw["dns"].update(sections.get("dns", {}))
    return raw


@dataclass
class GatewayHarness:
    dns: FakeDns
    tmp: Path
    mx_port: int = field(default_factory=free_port)
    gw: Gateway | None = None
    task: asyncio.Task[None] | None = None
    mxs: list[FakeMx] = field(default_factory=list)

    def mx(self, host: str, domain: str | None = None, pref: int = 10, **kwargs: Any) -> FakeMx:
        """Start a fake MX on ``host`` (127.0.0.x) and, with ``domain``, publish it in DNS."""
        fake = FakeMx(host=host, port=self.mx_port, hostname=f"mx-{host}.test", **kwargs).start()
        self.mxs.append(fake)
        name = f"mx-{host.replace('.', '-')}.test"
        self.dns.add_a(name, host)
        if domain is not None:
            self.dns.add_mx(domain, pref, name)
        return fake

    async def start(
        self,
        clock: Clock | None = None,
        *,
        serve_only: bool = False,
        **sections: dict[str, Any],
    ) -> Gateway:
        """Build and start the gateway.

        Args:
            clock: the time source (``gateway.app.build(config, clock=...)``); a fake clock
                lets a scenario jump time.
            serve_only: listen for SMTP (intake commits to the store) but do not run the
                relay and the other tasks yet; ``run()`` starts them.
            **sections: config sections merged over ``base_config``.
        """
        raw = _config_with(self.dns, self.tmp, self.mx_port, sections)
        cfg = config_module.from_dict(raw)
        self.gw = await build(cfg, clock=clock)
        await start_listeners(self.gw)
        if not serve_only:
            self.run()
        return self.gw

    def run(self) -> None:
        """Start the relay and the other long-running tasks (after ``start(serve_only=True)``)."""
        assert self.gw is not None
        assert self.task is None, "already running"
        self.task = asyncio.get_running_loop().create_task(run(self.gw))

    async def stop(self) -> None:
        if self.gw is not None and self.task is None:
            # Started with serve_only and never run: close what build() opened.
            for server in self.gw.servers:
                server.close()
            with contextlib.suppress(Exception):
                await self.gw.store.close()
        if self.gw is not None and self.task is not None:
            self.gw.shutdown()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(15):
                    await self.task
        self.gw = None
        self.task = None

    def close(self) -> None:
        for fake in self.mxs:
            fake.stop()

    @property
    def port(self) -> int:
        assert self.gw is not None
        return self.gw.smtp_port

    def smtp(self, **kwargs: Any) -> smtplib.SMTP:
        """A blocking smtplib client (run it in a thread via ``send``)."""
        return smtplib.SMTP(
            "127.0.0.1", self.port, local_hostname="client.test", timeout=10, **kwargs
        )

    async def send(
        self,
        rcpts: list[str],
        body: bytes | None = None,
        sender: str = "app@sender.example",
        headers: str = "",
    ) -> dict[str, tuple[int, bytes]]:
        """Send one message with smtplib in a thread; returns smtplib's refused dict."""
        content = (
            body
            or (
                f"From: App <{sender}>\r\nTo: {', '.join(rcpts)}\r\nSubject: Invoice 42\r\n"
                f"{headers}\r\nHello.\r\n"
            ).encode()
        )

        def work() -> dict[str, tuple[int, bytes]]:
            with self.smtp() as client:
                return client.sendmail(sender, rcpts, content)

        return await asyncio.to_thread(work)

    async def deliver(self, address: str, timeout: float = 10) -> str:
        """Send one message to ``address`` and wait until the first fake MX received it and
        the recipient is ``sent``; returns the return path (``MAIL FROM``) the MX saw."""
        mx = self.mxs[0]
        before = len(mx.messages)
        refused = await self.send([address])
        assert refused == {}, refused
        messages = await mx.wait_for(before + 1, timeout=timeout)
        await self.wait_status(address, Status.SENT, timeout=timeout)
        received = messages[before]
        assert received.rcpt_tos == (address,), received.rcpt_tos
        return received.mail_from

    async def send_bounce(
        self,
        to: str,
        content: bytes,
        sender: str = "",
        source: str = "127.0.0.9",
    ) -> tuple[int, bytes]:
        """Mail ``content`` to the bounce address ``to`` the way a remote MTA does: no AUTH,
        ``MAIL FROM:<sender>`` (null by default), from ``source`` (another loopback address,
        outside a trusted network of ``127.0.0.1/32``). Returns the reply to RCPT when it
        is refused, else the reply to the final dot."""

        def work() -> tuple[int, bytes]:
            with smtplib.SMTP(
                "127.0.0.1",
                self.port,
                local_hostname="mta.remote.test",
                timeout=10,
                source_address=(source, 0),
            ) as client:
                client.ehlo()
                code, text = client.mail(sender)
                if code != 250:
                    return code, text
                code, text = client.rcpt(to)
                if code != 250:
                    return code, text
                return client.data(content)

        return await asyncio.to_thread(work)

    async def recipients(self, address: str) -> list[RecipientView]:
        assert self.gw is not None
        events = await self.gw.store.events_for(address, None, 100)
        queue_ids = {e.queue_id for e in events if e.queue_id}
        rows: list[RecipientView] = []
        for qid in sorted(queue_ids):
            rows += [r for r in await self.gw.store.recipients_of(qid) if r.address == address]
        return rows

    async def events(self, address: str) -> list[Event]:
        assert self.gw is not None
        return list(reversed(await self.gw.store.events_for(address, None, 100)))

    async def wait_status(self, address: str, status: Status, timeout: float = 10) -> RecipientView:
        """Poll the store (bounded) until a recipient of ``address`` has ``status``."""

        async def reached() -> RecipientView | None:
            return next((r for r in await self.recipients(address) if r.status is status), None)

        return await wait_until(reached, timeout, what=f"{address} {status.value}")

    async def raw(self) -> RawClient:
        """A raw socket session to the gateway, the greeting already read."""
        client = await RawClient.connect(self.port)
        greeting = await client.reply()
        assert greeting.startswith("220 "), greeting
        return client

    async def queued_count(self) -> int:
        """How many recipient rows the store holds, whatever their status."""
        assert self.gw is not None
        return sum((await self.gw.store.queue_summary()).counts.values())


class OffsetClock:
    """The system clock plus an offset that a scenario can jump (``gateway.core.ports.Clock``).

    Time keeps flowing, so retries still come due; ``jump`` moves it forward at once, as a
    mis-set NTP server or a resumed virtual machine would.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump(self, delta: timedelta) -> None:
        self.offset += delta


# --- a real gateway process (for kill -9) ---------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    msg = f"cannot write {type(value).__name__} as TOML"
    raise TypeError(msg)


def config_toml(raw: dict[str, dict[str, Any]]) -> str:
    """A tiny TOML writer for ``base_config`` output: one table per section."""
    lines: list[str] = []
    for section, values in raw.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class GatewaySubprocess:
    """``python -m gateway --config <path> serve`` as a child process, output in files.

    Args:
        config: the TOML file.
        port: the SMTP listen port (the process is up once it accepts connections).
        logdir: where ``gateway-<run>.log`` files go.
        env: extra environment variables. One that names a test hook
            (``gateway_hooks.HOOKS``, e.g. ``GATEWAY_TEST_FAULT``) runs the process as
            ``python -m tests.scenarios.gateway_hooks``: the same command line with the hook
            installed first (the production code has none).
    """

    def __init__(
        self, config: Path, port: int, logdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.config = config
        self.port = port
        self.logdir = logdir
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    async def start(self, timeout: float = 15, env: dict[str, str] | None = None) -> None:
        """Start (again); ``env`` replaces the extra environment for this run."""
        if env is not None:
            self.env = dict(env)
        self.runs += 1
        full = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        full["PYTHONPATH"] = str(ROOT)
        full.update(self.env)
        module = "tests.scenarios.gateway_hooks" if set(HOOKS) & set(self.env) else "gateway"
        with (self.logdir / f"gateway-{self.runs}.log").open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, "--config", str(self.config), "serve"],
                cwd=ROOT,
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        async def listening() -> bool:
            assert proc.poll() is None, "gateway exited early"
            return await asyncio.to_thread(_port_open, self.port)

        try:
            await wait_until(listening, timeout, what="the gateway listening")
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{self.output()}") from None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed beyond what was already durable."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    async def wait_exit(self, timeout: float = 10) -> int:
        """Wait (bounded) for the process to end by itself; its return code."""
        proc = self.proc
        assert proc is not None
        await wait_until(lambda: proc.poll() is not None, timeout, what="the gateway exited")
        return proc.returncode

    def terminate(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; safe to call in ``finally``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def output(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.logdir.glob("gateway-*.log"))
        )


def write_config(
    dns: FakeDns, tmp: Path, mx_port: int, smtp_port: int, **sections: dict[str, Any]
) -> Path:
    """``base_config`` for a gateway subprocess listening on ``smtp_port``, as a TOML file.

    The node id is fixed, so a restarted process releases its predecessor's leases at once.
    """
    merged: dict[str, dict[str, Any]] = {
        "smtp": {"listen": f"127.0.0.1:{smtp_port}"},
        "relay": {"node_id": "fault-node", "lease": "10m"},
        "log": {"level": "info", "format": "text"},
    }
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    path = tmp / "gateway.toml"
    path.write_text(config_toml(_config_with(dns, tmp, mx_port, merged)), encoding="utf-8")
    return path


def published_mx(
    dns: FakeDns,
    name: str,
    domain: str = "example.com",
    host: str = "127.0.0.2",
    *,
    start: bool = True,
) -> FakeMx:
    """A ``FakeMx`` on ``host`` and a free port (``mx.port``, the relay's ``mx_port``),
    published in ``dns`` as ``domain``'s MX ``name``; started unless ``start`` is false
    (the destination is down until the test calls ``mx.start()``)."""
    mx = FakeMx(host=host, port=free_port(), hostname=name)
    if start:
        mx.start()
    dns.add_a(name, host)
    dns.add_mx(domain, 10, name)
    return mx


#: Seconds a kill -9 scenario watches for a delivery that must not come: past the retry
#: interval of ``base_config`` (1 s). There is no event for "nothing happened", so this
#: is a sleep on purpose.
NOTHING_MORE_WITHIN = 1.5


@dataclass
class CrashableGateway:
    """A gateway subprocess that a kill -9 scenario crashes and restarts (``gateway``), its
    SQLite file (``db``), its SMTP port, and the one destination it relays to (``mx``)."""

    gateway: GatewaySubprocess
    mx: FakeMx
    port: int
    db: Path

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A query on the SQLite file from outside the process (``db_rows``)."""
        return db_rows(self.db, sql, args)

    def kill9(self) -> None:
        """SIGKILL the gateway now; it must have been running (return code ``-9``)."""
        self.gateway.kill()
        assert self.gateway.proc is not None
        assert self.gateway.proc.returncode == -9, self.gateway.output()

    async def delivered_exactly(self, count: int, settle: float = NOTHING_MORE_WITHIN) -> None:
        """``count`` deliveries arrive and every recipient ends ``sent``; then nothing more
        arrives for ``settle`` seconds (a retry interval: a duplicate would come by then)."""
        await self.mx.wait_for(count, timeout=10)
        await wait_until(
            lambda: {s for (s,) in self.rows("SELECT status FROM recipients")} == {"sent"},
            what="every recipient sent",
        )
        await asyncio.sleep(settle)  # the behaviour under test: no event says "nothing came"
        assert len(self.mx.messages) == count, [m.rcpt_tos for m in self.mx.messages]


@contextlib.asynccontextmanager
async def crashable_gateway(
    dns: FakeDns, tmp: Path, mx_name: str, *, mx_up: bool = True, **sections: dict[str, Any]
) -> AsyncIterator[CrashableGateway]:
    """The set-up every kill -9 scenario shares: a destination published as ``mx_name`` (up
    unless ``mx_up`` is false), a gateway subprocess configured by ``write_config`` with
    ``sections`` on a free port, not started; stopped (and the destination too) at the end.
    """
    mx = published_mx(dns, mx_name, start=mx_up)
    smtp_port = free_port()
    config = write_config(dns, tmp, mx.port, smtp_port, **sections)
    gateway = GatewaySubprocess(config, smtp_port, tmp)
    try:
        yield CrashableGateway(gateway, mx, smtp_port, tmp / "gateway.db")
    finally:
        gateway.terminate()
        mx.stop()


def db_rows(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the store's SQLite file from the test through a separate read-only connection."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        return conn.execute(sql, args).fetchall()


async def send_message(
    port: int, rcpt: str, message_id: str | None, sender: str = "app@sender.example"
) -> tuple[int, bytes]:
    """One message over smtplib (in a thread): the reply to the final dot, or ``(-1, why)``
    when the connection died before a reply came (the client does not know the outcome).
    Without ``message_id`` the message has no Message-ID (the gateway adds one)."""
    header = f"Message-ID: {message_id}\r\n" if message_id else ""
    content = (
        f"From: App <{sender}>\r\nTo: {rcpt}\r\nSubject: Fault test\r\n{header}\r\nHello.\r\n"
    ).encode()
    return await send_content(port, sender, rcpt, content)


async def send_content(
    port: int,
    sender: str,
    rcpt: str,
    content: bytes,
    helo: str = "client.test",
    source: str | None = None,
) -> tuple[int, bytes]:
    """``content`` from ``sender`` to ``rcpt`` over smtplib (in a thread), saying ``helo`` and
    connecting from ``source`` (a loopback address) when given: the reply to the final dot,
    the refusal of the RCPT, or ``(-1, why)`` when the connection died before a reply."""

    def work() -> tuple[int, bytes]:
        try:
            with smtplib.SMTP(
                "127.0.0.1",
                port,
                local_hostname=helo,
                timeout=10,
                source_address=(source, 0) if source else None,
            ) as client:
                client.ehlo()
                client.mail(sender)
                code, text = client.rcpt(rcpt)
                if code != 250:
                    return code, text
                return client.data(content)
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            return -1, str(exc).encode()

    return await asyncio.to_thread(work)


class RawClient:
    """A raw SMTP client over a loopback socket: bytes out, whole replies in (bounded waits)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, source: str | None = None, timeout: float = 5) -> RawClient:
        """Connect to ``127.0.0.1:port``, from the loopback address ``source`` when given
        (per-client limits tell clients apart by it)."""
        local = (source, 0) if source is not None else None
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
        return cls(reader, writer)

    async def reply(self, timeout: float = 5) -> str:
        """One whole reply (all continuation lines), CRLF-joined, without the final CRLF."""
        lines: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                line = await self.reader.readline()
                if not line:
                    raise ConnectionError("connection closed: " + "\r\n".join(lines))
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                lines.append(text)
                if len(text) < 4 or text[3] != "-":
                    return "\r\n".join(lines)

    async def send(self, data: bytes) -> None:
        """Write ``data``; a server that closed meanwhile shows at the next ``reply``."""
        self.writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def command(self, line: bytes | str, timeout: float = 5) -> str:
        """Send one command line (CRLF appended) and return the reply."""
        data = line.encode() if isinstance(line, str) else line
        await self.send(data + b"\r\n")
        return await self.reply(timeout)

    async def closed(self, timeout: float = 5) -> bool:
        """True when the server has closed the connection (EOF, or a reset, within
        ``timeout``)."""
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read() == b""
        except ConnectionError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def make_dsn(
    to: str,
    final_recipient: str,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
    reporting_mta: str = "mx.remote.test",
) -> bytes:
    """An RFC 3464 delivery status notification (multipart/report; report-type=
    delivery-status) about ``final_recipient``, addressed to the return path ``to``."""
    diag = diagnostic.format(rcpt=final_recipient)
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"\r\n'
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        f"Reporting-MTA: dns; {reporting_mta}\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {final_recipient}\r\n"
        f"Original-Recipient: rfc822; {final_recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Remote-MTA: dns; {reporting_mta}\r\n"
        f"Diagnostic-Code: smtp; {diag}\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: App <app@sender.example>\r\n"
        f"To: {final_recipient}\r\n"
        "Subject: Invoice 42\r\n"
        "\r\n"
        "--BOUNDARY--\r\n"
    ).encode()


def make_arf(to: str, original_rcpt: str, feedback_type: str = "abuse") -> bytes:
    """An RFC 5965 abuse report (multipart/report; report-type=feedback-report)."""
    return (
        "From: Feedback Loop <fbl@isp.remote.test>\r\n"
        f"To: {to}\r\n"
        "Subject: FW: Invoice 42\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"\r\n'
        "\r\n"
        "--ARF\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is an email abuse report for an email message received from IP 127.0.0.1.\r\n"
        "\r\n"
        "--ARF\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        f"Feedback-Type: {feedback_type}\r\n"
        "User-Agent: RemoteFBL/1.0\r\n"
        "Version: 1\r\n"
        f"Original-Rcpt-To: {original_rcpt}\r\n"
        "Source-IP: 127.0.0.1\r\n"
        "Reported-Domain: sender.example\r\n"
        "\r\n"
        "--ARF\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        "From: App <app@sender.example>\r\n"
        f"To: {original_rcpt}\r\n"
        "Subject: Invoice 42\r\n"
        "\r\n"
        "Hello.\r\n"
        "\r\n"
        "--ARF--\r\n"
    ).encode()


def make_auto_reply(to: str, from_address: str) -> bytes:
    """An RFC 3834 out-of-office reply from ``from_address``."""
    return (
        f"From: {from_address}\r\n"
        f"To: {to}\r\n"
        "Subject: Out of office: Invoice 42\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "Precedence: auto_reply\r\n"
        "\r\n"
        "I am out of office until Monday with limited access to e-mail.\r\n"
    ).encode()


# --- several gateway processes on one store (multi-node scenarios) --------------------------


def write_node_config(
    dns: FakeDns,
    tmp: Path,
    mx_port: int,
    smtp_port: int,
    node_id: str,
    **sections: dict[str, Any],
) -> Path:
    """``write_config`` for one of several nodes: the file is ``<tmp>/<node_id>.toml`` and
    ``relay.node_id`` is ``node_id`` (a restarted node keeps its id, so it releases its
    predecessor's leases at once). Pass ``store={"url": ...}`` to share a PostgreSQL store."""
    merged: dict[str, dict[str, Any]] = {
        "smtp": {"listen": f"127.0.0.1:{smtp_port}"},
        "relay": {"node_id": node_id, "lease": "10m"},
        "log": {"level": "warning", "format": "text"},
    }
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    path = tmp / f"{node_id}.toml"
    path.write_text(config_toml(_config_with(dns, tmp, mx_port, merged)), encoding="utf-8")
    return path


@dataclass
class Try:
    """One attempt to submit a message: which node, the reply code to the final dot (or to
    the command that refused it), ``-1`` when the connection died before any reply, and
    when it started and ended (``time.monotonic()``)."""

    node: int
    code: int
    started: float
    ended: float
    phase: str = "data"
    text: str = ""


@dataclass
class Submission:
    """A message the load client submits until some node answers ``250``."""

    index: int
    token: str
    rcpt: str
    tries: list[Try] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return bool(self.tries) and self.tries[-1].code == 250

    @property
    def cut(self) -> bool:
        """The client saw a connection die while this message was in a transaction (the
        ``250`` never came), and submitted it again, elsewhere."""
        return any(t.code == -1 for t in self.tries)

    def content(self) -> bytes:
        return (
            f"From: App <app@sender.example>\r\nTo: {self.rcpt}\r\n"
            f"Subject: multinode {self.token}\r\nMessage-ID: <{self.token}@sender.example>\r\n"
            f"X-Test-Token: {self.token}\r\n\r\nHello from {self.token}.\r\n"
        ).encode()


def token_of(content: bytes) -> str | None:
    """The ``X-Test-Token`` of a message a ``LoadClient`` sent (as the destination got it)."""
    import re

    found = re.search(rb"(?:^|\n)X-Test-Token: (\S+)\r?\n", content)
    return found.group(1).decode() if found else None


class LoadClient:
    """Submits ``messages`` messages from ``sessions`` threads (bounded), each thread keeping
    a connection for up to ``per_connection`` messages, to the SMTP ports ``ports``.

    Thread ``i`` starts on node ``i % len(ports)``. A connection that is refused or dies
    makes the thread move to the next node; a message whose transaction it was in is
    submitted again there (same Message-ID, so a gateway that had committed it records a
    duplicate instead of queueing it twice). A ``4xx`` is retried after ``pause`` seconds on
    the same node; a ``5xx`` is final (a test failure). Each message is tried at most until
    ``deadline`` seconds after ``start()``.

    ``acked`` counts ``250``s as they come (for a test that acts in the middle of the run).
    """

    def __init__(
        self,
        ports: list[int],
        messages: int,
        *,
        sessions: int = 8,
        per_connection: int = 20,
        prefix: str = "m",
        domain: str = "example.com",
        pause: float = 0.2,
        deadline: float = 120.0,
        timeout: float = 15.0,
    ) -> None:
        import threading

        self.ports = ports
        self.sessions = sessions
        self.per_connection = per_connection
        self.pause = pause
        self.deadline = deadline
        self.timeout = timeout
        self.items = [
            Submission(i, f"{prefix}{i:05d}", f"r{i:05d}@{domain}") for i in range(messages)
        ]
        self.acked = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.started = 0.0
        self.finished = 0.0

    # --- running ------------------------------------------------------------------------

    def start(self) -> LoadClient:
        import threading

        self.started = time.monotonic()
        for i in range(self.sessions):
            share = self.items[i :: self.sessions]
            thread = threading.Thread(
                target=self._session, args=(i % len(self.ports), share), daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def join(self, timeout: float) -> bool:
        """Wait (bounded) for every thread; ``True`` when all are done."""
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        done = not any(t.is_alive() for t in self._threads)
        if done:
            self.finished = time.monotonic()
        return done

    def stop(self) -> None:
        """Ask the threads to stop after their current message (safe in ``finally``)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    async def wait_acked(self, count: int, timeout: float) -> None:
        def acked() -> bool:
            if self.acked >= count:
                return True
            assert any(t.is_alive() for t in self._threads), "the load client stopped early"
            return False

        await wait_until(acked, timeout, what=f"{count} acknowledged")

    def _session(self, node: int, items: list[Submission]) -> None:
        client: smtplib.SMTP | None = None
        sent_on_connection = 0
        try:
            for item in items:
                while not item.acked:
                    if self._stop.is_set():
                        return
                    if time.monotonic() - self.started > self.deadline:
                        with self._lock:
                            self.errors.append(f"{item.token}: not acknowledged in time")
                        break
                    if client is None:
                        try:
                            client = smtplib.SMTP(
                                "127.0.0.1",
                                self.ports[node],
                                local_hostname="client.test",
                                timeout=self.timeout,
                            )
                            client.ehlo()
                            sent_on_connection = 0
                        except (OSError, smtplib.SMTPException):
                            _quietly_close(client)
                            client = None
                            node = (node + 1) % len(self.ports)
                            time.sleep(0.05)
                            continue
                    code = self._transaction(client, node, item)
                    if code == -1:
                        _quietly_close(client)
                        client = None
                        node = (node + 1) % len(self.ports)
                    elif code == 250:
                        with self._lock:
                            self.acked += 1
                        sent_on_connection += 1
                        if sent_on_connection >= self.per_connection:
                            with contextlib.suppress(OSError, smtplib.SMTPException):
                                client.quit()
                            _quietly_close(client)
                            client = None
                    elif 400 <= code < 500:
                        time.sleep(self.pause)
                    else:
                        last = item.tries[-1]
                        with self._lock:
                            self.errors.append(
                                f"{item.token}: refused with {code} at {last.phase}: {last.text}"
                            )
                        break
        finally:
            _quietly_close(client)

    def _transaction(self, client: smtplib.SMTP, node: int, item: Submission) -> int:
        started = time.monotonic()
        phase = "mail"
        text = b""
        try:
            code, text = client.mail("app@sender.example")
            if code == 250:
                phase = "rcpt"
                code, text = client.rcpt(item.rcpt)
            if code == 250:
                phase = "data"
                code, text = client.data(item.content())
            elif code < 500:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    client.rset()
        except (OSError, smtplib.SMTPException) as exc:
            code, text = -1, str(exc).encode()
        reply = text.decode("utf-8", "replace")
        item.tries.append(Try(node, code, started, time.monotonic(), phase, reply))
        return code

    # --- results ------------------------------------------------------------------------

    @property
    def cut(self) -> list[Submission]:
        return [item for item in self.items if item.cut]

    @property
    def unacked(self) -> list[Submission]:
        return [item for item in self.items if not item.acked]


def _quietly_close(client: smtplib.SMTP | None) -> None:
    if client is not None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.close()
