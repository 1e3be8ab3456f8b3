"""An in-process gateway for scenario tests: real SMTP in, real SMTP out, DNS on loopback.

``GatewayHarness`` builds a config around a ``FakeDns`` and a fixed MX port shared by the
fake MX servers on 127.0.0.2, 127.0.0.3, …, starts the gateway in the test's event loop,
and offers helpers to send mail and read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import config as config_module
from gateway.app import Gateway, build, run, start_listeners
from gateway.core.model import Event, Status
from gateway.core.ports import RecipientView
from tests.fakes.dns_server import FakeDns
from tests.fakes.mx import FakeMx, free_port

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

    async def start(self, **sections: dict[str, Any]) -> Gateway:
        raw = base_config(self.dns, self.tmp, self.mx_port, **sections)
        cfg = config_module.from_dict(raw)
        self.gw = await build(cfg)
        await start_listeners(self.gw)
        self.task = asyncio.get_running_loop().create_task(run(self.gw))
        return self.gw

    async def stop(self) -> None:
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
        async with asyncio.timeout(timeout):
            while True:
                for row in await self.recipients(address):
                    if row.status is status:
                        return row
                await asyncio.sleep(0.05)

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


class RawClient:
    """A raw SMTP client over a loopback socket: bytes out, whole replies in (bounded waits)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, timeout: float = 5) -> RawClient:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
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
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: bytes | str, timeout: float = 5) -> str:
        """Send one command line (CRLF appended) and return the reply."""
        data = line.encode() if isinstance(line, str) else line
        await self.send(data + b"\r\n")
        return await self.reply(timeout)

    async def closed(self, timeout: float = 5) -> bool:
        """True when the server has closed the connection (EOF within ``timeout``)."""
        async with asyncio.timeout(timeout):
            return await self.reader.read() == b""

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
