"""A fake destination MTA for tests: aiosmtpd on loopback, faults scripted by address.

Owns: a real SMTP server in its own thread and event loop (so it serves the test's own
loop and a gateway subprocess alike), the scripted faults, and the record of what it
received. Does not own: any assertion; tests read ``messages``, ``events`` and
``connections``.

Faults picked by the recipient's local part:

=================  ==================================================================
``tempfail-*``     ``451 4.3.0`` at RCPT
``permfail-*``     ``550 5.1.1`` at RCPT
``full-*``         ``452 4.2.2`` at RCPT (mailbox full)
``toomany-*``      ``452 4.5.3`` at RCPT (too many recipients)
``421-*``          ``421 4.3.2`` at RCPT, then the server hangs up
``greylist-*``     ``451 4.7.1`` to the first attempt of each sender/recipient pair
``slow-*``         waits ``slow_delay`` seconds before answering RCPT
``dataperm-*``     ``554 5.6.0`` after the final dot
``datatemp-*``     ``451 4.3.0`` after the final dot
``drop-*``         closes the connection after the final dot without a reply
``hold-*``         keeps the message, sets ``dot_seen``, and holds the 250 back until
                   ``release()`` (at most ``hold_max`` seconds): "delivered, but the
                   sender does not know yet". Only the first ``hold_count`` messages.
=================  ==================================================================

Server-level modes, settable at run time: ``set_down()`` (nothing listens: connection
refused), ``mode = "greeting554"`` (``554`` greeting, waits for QUIT), ``"greeting421"``,
``"malformed"`` (a valid greeting, then replies that are not SMTP), ``"endless"`` (an
EHLO reply whose continuation lines never end), ``"silent"`` (accepts, never greets).
``open_now``/``peak_open`` count the scripted modes' connections open at once.
``tls=True`` offers STARTTLS with a trustme certificate; ``auth=(user, password)``
requires AUTH PLAIN/LOGIN (after STARTTLS when TLS is offered).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import socket
import ssl
import threading
import weakref
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.config import HostPort
from tests.waiting import wait_until

_START_TIMEOUT = 5.0
_ENDLESS_MAX_CHUNKS = 2000  # bounded: ~20 MB at most, far past any client's limit


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message the fake accepted with 250 after the final dot."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    peer: tuple[str, int]
    tls: bool
    auth_user: str | None
    mail_options: tuple[str, ...] = ()


@dataclass
class FakeMx:
    """A scripted SMTP server on a loopback address.

    Args:
        host: the loopback address to listen on (``127.0.0.2`` … are loopback on Linux).
        port: the port; ``0`` picks a free one (read it back from ``port``). Give several
            fakes on different addresses the same fixed port to share ``relay.mx_port``.
        hostname: the name in the greeting; passed to aiosmtpd so it never calls getfqdn.
        tls: offer STARTTLS with a certificate for ``hostname`` from ``ca``.
        auth: require AUTH with this user and password.
        slow_delay: seconds ``slow-*`` recipients wait before the RCPT reply.
        pipelining: advertise PIPELINING (RFC 2920) in the EHLO reply.
    """

    host: str = "127.0.0.1"
    port: int = 0
    hostname: str = "mx.fake.test"
    tls: bool = False
    auth: tuple[str, str] | None = None
    slow_delay: float = 1.0
    mode: str = "normal"
    messages: list[ReceivedMessage] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    connections: int = 0
    greylisted: set[tuple[str, str]] = field(default_factory=set)
    max_rcpts: int | None = None  # more recipients in one transaction: 452 4.5.3
    open_now: int = 0  # scripted modes: connections open now, and the most at once
    peak_open: int = 0
    ca: trustme.CA = field(default_factory=trustme.CA)
    hold_count: int = 1
    hold_max: float = 30.0
    pipelining: bool = False

    def __post_init__(self) -> None:
        self.dot_seen = threading.Event()  # a hold-* message arrived (set from the thread)
        self._released = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._live: weakref.WeakSet[asyncio.BaseProtocol] = weakref.WeakSet()
        self._raw: list[asyncio.BaseTransport] = []
        self._tls_context: ssl.SSLContext | None = None
        if self.tls:
            self._tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert(self.hostname, self.host).configure_cert(self._tls_context)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeMx:
        """Start the server thread and listen; returns when the port is bound."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-mx-{self.host}", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            msg = "fake MX thread did not start"
            raise RuntimeError(msg)
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Close every connection, stop listening, and end the thread."""
        if self._loop is None or self._thread is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT)
        self._loop = None
        self._thread = None

    def set_down(self, down: bool = True) -> None:
        """Stop listening and drop live sessions (``down``), or listen again."""
        self._call(self._unlisten() if down else self._listen())

    def __enter__(self) -> FakeMx:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> FakeMx:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def hostport(self) -> HostPort:
        return HostPort(self.host, self.port)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this fake's certificate authority."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until ``count`` messages were received; ``AssertionError`` after ``timeout``."""
        await wait_until(lambda: len(self.messages) >= count, timeout, what=f"{count} messages")
        return list(self.messages)

    def release(self) -> None:
        """Let held ``hold-*`` replies go (and stop holding new ones)."""
        self.hold_count = 0
        self._released.set()

    def commands(self, name: str) -> list[str]:
        """The arguments of every ``name`` command the fake's handler saw."""
        return [arg for command, arg in self.events if command == name]

    # --- inside the server thread --------------------------------------------------------------
    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(_START_TIMEOUT)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for protocol in list(self._live):
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.close()
        for transport in self._raw:
            transport.close()
        self._raw.clear()
        await asyncio.sleep(0.01)  # let connection_lost callbacks run

    async def _shutdown(self) -> None:
        await self._unlisten()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_START_TIMEOUT):
                await asyncio.gather(*tasks, return_exceptions=True)

    def _protocol(self) -> asyncio.BaseProtocol:
        self.connections += 1
        protocol: asyncio.BaseProtocol
        if self.mode == "normal":
            protocol = _Smtp(
                self._raw,
                _Handler(self),
                hostname=self.hostname,
                tls_context=self._tls_context,
                enable_SMTPUTF8=True,
                decode_data=False,
                authenticator=self._authenticate if self.auth else None,
                auth_required=self.auth is not None,
                auth_require_tls=self.tls,
                timeout=30,
                loop=asyncio.get_running_loop(),
            )
        else:
            protocol = _Scripted(self.mode, self.hostname, self)
        self._live.add(protocol)
        return protocol

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.auth is not None
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == self.auth
        )
        self.events.append(("AUTH", mechanism))
        return AuthResult(success=ok, handled=False, auth_data=data.login.decode() if ok else None)


class _Smtp(SMTP):
    """aiosmtpd's server, remembering each raw socket transport.

    aiosmtpd 1.4.6 can leave the original (pre-TLS) transport open when a STARTTLS
    handshake fails; the fake closes every raw transport itself when it stops.
    """

    def __init__(self, raw: list[asyncio.BaseTransport], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._raw_transports = raw

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None and self.transport is None:
            self._raw_transports.append(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self._original_transport is not None:
            self._original_transport.close()


class _Handler:
    """The aiosmtpd handler: scripts replies from the local part, records messages."""

    def __init__(self, fake: FakeMx) -> None:
        self.fake = fake

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.fake.events.append(("EHLO", hostname))
        session.host_name = hostname
        if self.fake.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self.fake.events.append(("MAIL", address))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.fake.events.append(("RCPT", address))
        local = address.partition("@")[0].lower()
        if local.startswith("slow-"):
            await asyncio.sleep(self.fake.slow_delay)
        if local.startswith("tempfail-"):
            return "451 4.3.0 Temporary failure, try again later"
        if local.startswith("permfail-"):
            return "550 5.1.1 No such user here"
        if local.startswith("full-"):
            return "452 4.2.2 Mailbox full"
        if local.startswith("toomany-"):
            return "452 4.5.3 Too many recipients"
        if self.fake.max_rcpts is not None and len(envelope.rcpt_tos) >= self.fake.max_rcpts:
            return "452 4.5.3 Too many recipients"
        if local.startswith("greylist-"):
            pair = (str(envelope.mail_from), address)
            if pair not in self.fake.greylisted:
                self.fake.greylisted.add(pair)
                return "451 4.7.1 Greylisted, please try again later"
        if local.startswith("421-"):
            # The reply is written before this callback runs; close() flushes it first.
            asyncio.get_running_loop().call_soon(_close, server)
            return "421 4.3.2 Service shutting down"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.fake.events.append(("RSET", ""))
        return "250 2.0.0 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.fake.events.append(("QUIT", ""))
        return "221 2.0.0 Bye"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.fake.events.append(("DATA", ""))
        locals_ = [rcpt.partition("@")[0].lower() for rcpt in envelope.rcpt_tos]
        if any(local.startswith("drop-") for local in locals_):
            _close(server)
            return "250 2.0.0 never sent"
        if any(local.startswith("dataperm-") for local in locals_):
            return "554 5.6.0 Message content rejected"
        if any(local.startswith("datatemp-") for local in locals_):
            return "451 4.3.0 Try again later"
        content = envelope.original_content or b""
        self.fake.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                content=bytes(content),
                peer=session.peer,
                tls=session.ssl is not None,
                auth_user=session.auth_data if session.authenticated else None,
                mail_options=tuple(envelope.mail_options),
            )
        )
        if any(local.startswith("hold-") for local in locals_) and self.fake.hold_count > 0:
            self.fake.hold_count -= 1
            self.fake.dot_seen.set()
            # The message is kept (above); the reply waits, bounded.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.fake.hold_max
            while not self.fake._released.is_set() and loop.time() < deadline:
                await asyncio.sleep(0.01)
        return "250 2.0.0 Message accepted"


def _close(server: SMTP) -> None:
    if server.transport is not None:
        server.transport.close()


class _Scripted(asyncio.Protocol):
    """A misbehaving server for the modes aiosmtpd cannot express."""

    def __init__(self, mode: str, hostname: str, fake: FakeMx) -> None:
        self.mode = mode
        self.hostname = hostname
        self.fake = fake
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._chunks = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fake.open_now += 1
        self.fake.peak_open = max(self.fake.peak_open, self.fake.open_now)
        if self.mode == "greeting554":
            transport.write(b"554 5.7.1 " + self.hostname.encode() + b" no service for you\r\n")
        elif self.mode == "greeting421":
            transport.write(b"421 4.3.2 " + self.hostname.encode() + b" busy, try later\r\n")
        elif self.mode != "silent":
            transport.write(b"220 " + self.hostname.encode() + b" ESMTP fake\r\n")

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer and self.transport is not None:
            line, _, self._buffer = self._buffer.partition(b"\n")
            self._command(line.strip().upper())

    def _command(self, line: bytes) -> None:
        assert self.transport is not None
        if line == b"QUIT":
            self.transport.write(b"221 2.0.0 Bye\r\n")
            self.transport.close()
        elif self.mode == "malformed":
            self.transport.write(b"this is not an SMTP reply\r\n")
        elif self.mode == "endless":
            self._endless()
        else:
            self.transport.write(b"503 5.5.1 Bad sequence of commands\r\n")

    def _endless(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._chunks += 1
        if self._chunks > _ENDLESS_MAX_CHUNKS:
            self.transport.close()
            return
        self.transport.write(b"250-and another line of this never ending reply\r\n" * 200)
        asyncio.get_running_loop().call_later(0.005, self._endless)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fake.open_now -= 1


# Under pytest-xdist (``PYTEST_XDIST_WORKER=gw<n>``) worker n takes its ports from a block of
# its own below the kernel's ephemeral range (32768-60999 here): a port handed out here is one
# the caller binds later (a fake on 127.0.0.2, a gateway subprocess once it has started), and
# in between neither the other worker's fakes nor the source port of any outgoing connection
# can take it. Without xdist, the kernel picks, as before.
_BLOCK_START, _BLOCK_SIZE, _BLOCKS = 20000, 1500, 8
_next_in_block = itertools.count(random.randrange(_BLOCK_SIZE))


def _worker_block() -> int | None:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if name.startswith("gw") and name[2:].isdigit() and int(name[2:]) < _BLOCKS:
        return _BLOCK_START + int(name[2:]) * _BLOCK_SIZE
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on ``host`` a moment ago (for fakes sharing one port)."""
    block = _worker_block()
    if block is not None:
        for _ in range(_BLOCK_SIZE):
            port = block + next(_next_in_block) % _BLOCK_SIZE
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue  # in use (or in TIME_WAIT) on this host: the next one
                return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


__all__ = ["FakeMx", "ReceivedMessage", "free_port"]
