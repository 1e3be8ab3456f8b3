"""The bytes of an outbound SMTP session below aiosmtplib: the DATA stream (CRLF line
endings, dot-stuffing), command lines and pipelined replies (RFC 2920), socket and TLS set-up,
and the translation of aiosmtplib and socket errors into ``RelayError``s with the ``Phase``
they happened in.

Owns nothing stateful: the session and the pool are ``relay.client``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from aiosmtplib import (
    SMTPException,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from aiosmtplib.email import quote_address

from gateway.core.errors import PermanentRelayError, Phase, RelayError, TransientRelayError
from gateway.core.replies import Reply

# RFC 5321 §2.3.8: a bare CR or LF is not a line ending; we send each as CRLF so that no
# receiver, however lenient, can find an end-of-data sequence other than ours (SMTP
# smuggling). Content from intake is already CRLF-normalised, so this is a no-op there.
_BARE_LINE_ENDING = re.compile(rb"\r\n|\r(?!\n)|(?<!\r)\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")  # RFC 5321 §4.5.2 transparency
_PAYLOAD_IN_THREAD = 256 * 1024  # bytes: from here on, ~1 ms and more of scans and copies
# An address aiosmtplib's ``quote_address`` returns unchanged in brackets (its parse is the
# email package's, ~25 µs): the common case skips it; anything else still goes through it.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z"
)
# What aiosmtplib refuses in a command argument (CR, LF, NUL and the other controls).
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
# A pipelined reply (RFC 5321 §4.2: at most 512 octets a line; generous bounds here).
_MAX_REPLY_LINE = 8192
_MAX_REPLY_BUFFER = 1024 * 1024

# Errors a network step can raise; anything else is a bug and propagates.
NET_ERRORS = (SMTPException, OSError, TimeoutError, ValueError, RuntimeError)


@contextlib.contextmanager
def in_phase(phase: Phase, host: str) -> Iterator[None]:
    """Translate aiosmtplib and socket errors raised inside into ``RelayError``."""
    try:
        yield
    except RelayError:
        raise
    except (*NET_ERRORS, ssl.SSLError) as exc:
        raise failure(exc, phase, host) from None


def failure(exc: BaseException, phase: Phase, host: str) -> RelayError:
    """The ``RelayError`` for an error at ``phase``; replies are synthesised for I/O."""
    during = phase.value.upper() if phase is not Phase.DOT else "the final dot"
    if isinstance(exc, SMTPResponseException) and 400 <= exc.code < 600:
        reply = Reply.parse(exc.code, exc.message)
        if reply.is_permanent:
            return PermanentRelayError(reply, phase, host)
        return TransientRelayError(reply, phase, host)
    if isinstance(exc, SMTPResponseException):
        # RFC 3463 X.5.0: a reply we cannot parse, one past aiosmtplib's length limits,
        # or a code that makes no sense here.
        text = f"Malformed reply from {host} during {during}: {exc.code} {exc.message[:200]}"
        return TransientRelayError(synth(451, "4.5.0", text), phase, host)
    if isinstance(exc, SMTPTimeoutError | TimeoutError):
        text = f"Timed out waiting for {host} during {during}"
        return TransientRelayError(Reply(451, "4.4.2", text), phase, host)
    if isinstance(exc, ValueError) and phase is Phase.MAIL:
        reply = Reply(553, "5.1.7", "The sender address cannot be sent over SMTP")
        return PermanentRelayError(reply, phase, host)
    if isinstance(exc, OSError | SMTPException) or phase is Phase.DOT:
        if phase is Phase.DOT:
            text = f"Connection to {host} lost after the final dot; delivery status unknown"
        else:
            # The exception's type, not its text: "Connection reset by peer" would read as a
            # remote block to the reply classifier.
            text = f"Connection to {host} lost during {during} ({type(exc).__name__})"
        return TransientRelayError(synth(451, "4.4.2", text), phase, host)
    text = f"Protocol error with {host} during {during}: {describe(exc)}"
    return TransientRelayError(synth(451, "4.5.0", text), phase, host)


def synth(code: int, enhanced: str, text: str) -> Reply:
    """A reply of our own about the remote side; remote text folded onto one line."""
    return Reply(code, enhanced, " ".join(text.split()))


def describe(exc: BaseException) -> str:
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}"[:300] if detail else type(exc).__name__


async def payload_off_the_loop(content: bytes) -> bytes:
    """``data_payload``, in a worker thread for a large message: scanning and copying
    megabytes would hold the event loop (issue 13); a small one is not worth the hop."""
    if len(content) < _PAYLOAD_IN_THREAD:
        return data_payload(content)
    return await asyncio.to_thread(data_payload, content)


def data_payload(content: bytes) -> bytes:
    """The DATA stream for ``content``: CRLF line endings, dot-stuffed, terminated."""
    crlf = content.count(b"\r\n")
    if content.count(b"\r") == crlf and content.count(b"\n") == crlf:
        # Already CRLF throughout (all content from intake): every LF ends a line, so a
        # line-leading dot is the start or follows an LF. Byte-string scans, no regex.
        data = content.replace(b"\n.", b"\n..")
        if data.startswith(b"."):
            data = b"." + data
    else:
        data = _LEADING_DOT.sub(b"..", _BARE_LINE_ENDING.sub(b"\r\n", content))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def quote(address: str) -> str:
    """``<address>`` exactly as aiosmtplib's ``quote_address`` makes it (ValueError alike)."""
    if _PLAIN_ADDRESS.match(address):
        return f"<{address}>"
    return quote_address(address)


def command(head: bytes, options: Sequence[str]) -> bytes:
    """One command line as aiosmtplib would send it (same refusal of control characters)."""
    args = [head, *(option.encode("ascii") for option in options)]
    if any(_CONTROL.search(arg) for arg in args):
        msg = "Command arg contains a prohibited control character"
        raise ValueError(msg)
    return b" ".join(args) + b"\r\n"


class PipelinedReplies(asyncio.Protocol):
    """The transport's protocol during a pipelined transaction (RFC 2920): keeps every reply
    in order. aiosmtplib's own protocol holds one reply at a time and drops what arrives
    meanwhile, so it cannot read pipelined replies. Flow control and the loss of the
    connection are passed on to it, so its state stays true."""

    def __init__(self, inner: asyncio.BaseProtocol) -> None:
        self.inner = inner
        self.buffer = bytearray()
        self.replies: deque[SMTPResponse] = deque()
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def pending(self) -> bool:
        return bool(self.replies or self.buffer)

    def data_received(self, data: bytes) -> None:
        self.buffer.extend(data)
        try:
            while (response := parse_reply(self.buffer)) is not None:
                self.replies.append(response)
        except SMTPResponseException as exc:
            self.error = exc
        self._wake()

    def eof_received(self) -> bool:
        self.error = self.error or SMTPServerDisconnected("Unexpected EOF received")
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = self.error or SMTPServerDisconnected("Connection lost")
        self._wake()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def read(self, seconds: float) -> SMTPResponse:
        """The next reply; raises the connection's error, or ``TimeoutError``."""
        async with asyncio.timeout(seconds):
            while not self.replies:
                if self.error is not None:
                    raise self.error
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
        return self.replies.popleft()


def parse_reply(buffer: bytearray) -> SMTPResponse | None:
    """Take one complete (possibly multi-line) reply off ``buffer``; ``None`` if incomplete.
    Same reading as aiosmtplib's: the code of the last line, the texts joined by LF."""
    offset = 0
    texts: list[bytes] = []
    while True:
        end = buffer.find(b"\n", offset)
        if end == -1:
            if len(buffer) - offset > _MAX_REPLY_LINE or len(buffer) > _MAX_REPLY_BUFFER:
                raise SMTPResponseException(-1, "Response too long")
            return None
        line = bytes(buffer[offset : end + 1])
        if len(line) > _MAX_REPLY_LINE:
            raise SMTPResponseException(-1, "Response too long")
        try:
            code = int(line[:3])
        except ValueError:
            text = line.decode("utf-8", errors="ignore")
            raise SMTPResponseException(-1, f"Malformed SMTP response line: {text}") from None
        offset = end + 1
        texts.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            del buffer[:offset]
            return SMTPResponse(code, b"\n".join(texts).decode("utf-8", "surrogateescape"))


def utf8_headers(content: bytes) -> bool:
    """True when the header section has 8-bit bytes (RFC 6532 headers need SMTPUTF8)."""
    end = content.find(b"\r\n\r\n")
    return not (content if end < 0 else content[:end]).isascii()


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def open_socket(host: str, port: int) -> socket.socket:
    """A connected non-blocking socket; tries each address of a name in turn."""
    loop = asyncio.get_running_loop()
    infos: list[tuple[int, Any]]
    if is_ip(host):
        infos = [(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))]
    else:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        infos = [(family, addr) for family, _, _, _, addr in found]
    error: OSError = OSError(f"no addresses for {host}")
    for family, addr in infos:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, addr)
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise error


def client_tls_context(*, verify: bool) -> ssl.SSLContext:
    if verify:
        return ssl.create_default_context()
    # RFC 7435 opportunistic security: encrypt even when the certificate cannot be
    # checked (most MX certificates do not match the MX name).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
