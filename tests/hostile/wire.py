"""Raw bytes over loopback for the hostile-client suite: the scenario harness's raw client
(``tests.scenarios.harness.RawClient``, bound to a chosen source address), and a raw sink
standing in for the destination MX.

The client sends exactly the bytes a case gives (no SMTP library smooths them) and reads
whole replies. The sink speaks just enough SMTP for the relay and keeps every byte of each
DATA as it arrived on the wire, dot-stuffing and line endings included: what "reaches the
next hop" is read there, not from a parsed message.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TypeVar

from tests.scenarios.harness import RawClient

T = TypeVar("T")

__all__ = ["RawClient", "RawSink", "SinkMessage"]


@dataclass
class SinkMessage:
    """One DATA the sink took: the envelope and the raw bytes between ``354`` and the final
    ``CRLF.CRLF`` (exclusive), exactly as they arrived."""

    mail_from: bytes
    rcpt_tos: list[bytes]
    raw: bytes


@dataclass
class RawSink:
    """A minimal SMTP server that accepts everything and records raw DATA bytes."""

    host: str
    port: int
    messages: list[SinkMessage] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> RawSink:
        self.server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=64 * 1024 * 1024
        )
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mail_from, rcpts = b"", list[bytes]()
        try:
            writer.write(b"220 sink.test raw sink\r\n")
            while True:
                line = await reader.readuntil(b"\r\n")
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250 sink.test\r\n")
                elif verb == b"MAIL":
                    mail_from, rcpts = line[10:].strip(), list[bytes]()
                    writer.write(b"250 2.1.0 OK\r\n")
                elif verb == b"RCPT":
                    rcpts.append(line[8:].strip())
                    writer.write(b"250 2.1.5 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    body = await reader.readuntil(b"\r\n.\r\n")
                    self.messages.append(SinkMessage(mail_from, rcpts, body[: -len(b".\r\n")]))
                    writer.write(b"250 2.0.0 taken\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"250 2.0.0 OK\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()
