"""The SMTP listener: a thin subclass of aiosmtpd's ``SMTP`` and its asyncio server.

Owns: the few replies aiosmtpd hard-codes that a handler hook cannot change, the listener's
lifetime and the SIGTERM behaviour for new sessions (``421 4.3.2``). Does not own: what a
command means for the gateway (``smtp_in.handler``).

Each override below exists because aiosmtpd decides before any handler hook runs:

* CR or NUL inside EHLO/HELO/MAIL/RCPT arguments: aiosmtpd only splits lines on LF, so a
  bare CR (or NUL) would reach the hooks and, worse, a ``Received:`` header. Refused here
  with ``501 5.5.2`` before anything else looks at it.
* ``MAIL FROM:<>``: aiosmtpd answers the null reverse-path with a syntax error, but RFC 5321
  §4.5.5 requires it for bounces, which arrive on this listener for ``bounce.domain``.
* The DATA/MAIL size errors carry no enhanced status code: rewritten to ``552 5.3.4``.
* aiosmtpd's line length limit (``line_length_limit``, 1001 bytes) is a class attribute that
  sizes the connection's reader in ``__init__``: each instance sets its own from
  ``smtp.max_line_length`` before that runs. A longer line in DATA refuses the message after
  the final dot with ``LINE_TOO_LONG`` (``500 5.5.2``) rather than aiosmtpd's text without
  an enhanced code; command lines keep aiosmtpd's own, smaller limits (512 bytes and the
  extensions' additions, RFC 5321 §4.5.3.1.4), refused with the same reply.
* An address aiosmtpd cannot parse gets its own ``553 5.1.3 Error: malformed address``
  before any hook: at RCPT it goes to the handler instead, whose checklist refuses it with
  ``RECIPIENT_SYNTAX`` and records the refusal; at MAIL it gets ``SENDER_SYNTAX``.
* AUTH before STARTTLS: aiosmtpd answers with its own ``538`` sentence; ours is the
  ``AUTH_NEEDS_TLS`` constant.
* New sessions while shutting down, or beyond ``smtp.max_sessions``: ``421`` at once.
* AUTH inside a mail transaction: aiosmtpd accepts it; RFC 4954 §4 requires ``503 5.5.1``.
* The null sender's ``SIZE`` (aiosmtpd never sees it, see above) is checked as aiosmtpd
  checks any other sender's: a number of octets, at most ``smtp.max_message_size``.
* ``local_part_limit``: 64 octets (RFC 5321 §4.5.3.1.1), counted in UTF-8 octets; a longer
  local part is an address aiosmtpd cannot parse (``553``, as above).

What a session may do besides its commands (limits per client, timeouts, the error budget,
early talkers, pipelining before EHLO, HTTP) is the layer below, ``smtp_in.guard``.

One more, for the event loop rather than a reply: a read from the socket brings up to 250 KB
(uvloop's buffer), and aiosmtpd's DATA loop reads it line by line in a single step of the
loop, 20-30 ms for that much. During DATA the data is handed to aiosmtpd's reader in slices
of ``_DATA_SLICE`` bytes, one per turn of the loop, so that other sessions are served in
between; what is left when DATA ends is handed over at once, as aiosmtpd would have had it
(commands are never sliced: STARTTLS must discard unencrypted data still unread).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from typing import TYPE_CHECKING, Any, AnyStr, Protocol

from aiosmtpd.smtp import Session, syntax

from gateway.core import replies
from gateway.smtp_in.guard import GuardedSMTP, SessionRules, client_table
from gateway.smtp_in.limits import NO_LIMITS, ClientTable

if TYPE_CHECKING:
    from gateway.config import SmtpConfig

log = logging.getLogger("gateway.smtp_in")

NULL_SENDER = "<>"


class SessionHandler(Protocol):
    """What the protocol layer calls on its handler besides aiosmtpd's ``handle_*`` hooks
    (looked up by name): the intake's handler (``smtp_in.handler``) implements it, and this
    module does not import that one (the handler imports ``NULL_SENDER`` from here)."""

    def end_session(self, session: Session) -> None: ...


_SIZE_ERRORS = (
    "552 Error: Too much mail data",
    "552 Error: message size exceeds fixed maximum message size",
)
_LOCAL_PART_LIMIT = 64  # octets, RFC 5321 §4.5.3.1.1
_DATA_SLICE = 32 * 1024  # ~400 lines of a base64 attachment: 2-4 ms of aiosmtpd's DATA loop
# ``<dot-atom@dot-atom>`` with an LDH domain: what nearly every client sends. For it, the
# email package's tokenizer (aiosmtpd's ``_getaddr``, ~100 µs, and a class created per
# call) returns exactly the text between the brackets; anything else still goes through it.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE_ADDR = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")


class Listener:
    """Shared state of one listening socket: open sessions and the shutdown flag."""

    def __init__(self, max_sessions: int, clients: ClientTable | None = None) -> None:
        self.max_sessions = max_sessions
        # Per-client limits (smtp_in.limits); none unless given.
        self.clients = clients or ClientTable(NO_LIMITS, NO_LIMITS, ())
        self.sessions = 0
        self.shutting_down = False
        self.idle = asyncio.Event()
        self.idle.set()


class GatewaySMTP(GuardedSMTP):
    """aiosmtpd's SMTP with the overrides listed in the module docstring."""

    def __init__(
        self,
        handler: SessionHandler,
        listener: Listener,
        rules: SessionRules | None = None,
        line_length_limit: int | None = None,
        local_part_limit: int = 0,
        **kwargs: Any,
    ) -> None:
        if line_length_limit is not None:
            # Before SMTP.__init__, which sizes its StreamReader with it; smtp_DATA reads it
            # again per line. Counted in bytes with the CRLF (RFC 5321 §4.5.3.1.6).
            self.line_length_limit = line_length_limit
        super().__init__(handler, rules or SessionRules.unlimited(), listener.clients, **kwargs)
        # 64 octets from the listener (RFC 5321 §4.5.3.1.1); aiosmtpd's default 0 is none.
        self.local_part_limit = local_part_limit
        self.listener = listener
        self._last_getaddr: tuple[str, tuple[str | None, str | None]] | None = None
        self._in_data = False
        self._backlog: bytearray | None = None  # DATA received, not yet handed to the reader

    # --- DATA in slices (module docstring) ------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._backlog is not None:
            self._backlog += data
        elif self._in_data and len(data) > _DATA_SLICE:
            self._backlog = bytearray(data[_DATA_SLICE:])
            super().data_received(data[:_DATA_SLICE])
            self.loop.call_soon(self._feed_slice)
        else:
            super().data_received(data)

    def _feed_slice(self) -> None:
        backlog = self._backlog
        if backlog is None:  # handed over at the end of DATA, or dropped at EOF
            return
        piece = bytes(backlog[:_DATA_SLICE])
        del backlog[:_DATA_SLICE]
        if not backlog:
            self._backlog = None
        super().data_received(piece)  # after connection_lost, StreamReaderProtocol drops it
        if self._backlog is not None:
            self.loop.call_soon(self._feed_slice)

    @syntax("DATA")  # as aiosmtpd's own: HELP lists the commands that carry it
    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False
            backlog, self._backlog = self._backlog, None
            if backlog:  # the commands that followed the final dot
                super().data_received(bytes(backlog))

    def eof_received(self) -> bool | None:
        # aiosmtpd ends the session at EOF, dropping what its reader has not read yet;
        # the backlog goes the same way (the reader takes no data after its EOF).
        self._backlog = None
        return super().eof_received()

    async def push(self, status: AnyStr) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if text.startswith(_SIZE_ERRORS):
            text = str(replies.MESSAGE_TOO_BIG)
        elif text.startswith(("500 Line too long", "500 Command line too long")):
            text = str(replies.LINE_TOO_LONG)
        await super().push(text)

    async def _handle_client(self) -> None:
        listener = self.listener
        if listener.shutting_down or listener.sessions >= listener.max_sessions:
            reply = replies.SHUTTING_DOWN if listener.shutting_down else replies.TOO_MANY_SESSIONS
            await self.push(str(reply))
            if self.transport is not None:
                self.transport.close()
            return
        listener.sessions += 1
        listener.idle.clear()
        try:
            await super()._handle_client()
        finally:
            # However the session ended (QUIT, a hang-up: aiosmtpd cancels this task, maybe
            # twice, so nothing is awaited here), its open transaction's holds go back.
            if self.session is not None:
                self.event_handler.end_session(self.session)
            listener.sessions -= 1
            if listener.sessions == 0:
                listener.idle.set()

    async def _refuse_bad_characters(self, arg: str | None) -> bool:
        if arg is not None and ("\r" in arg or "\x00" in arg or "\n" in arg):
            await self.push(str(replies.BAD_CHARACTERS))
            return True
        return False

    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._refuse_bad_characters(hostname):
            await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._refuse_bad_characters(hostname):
            await super().smtp_HELO(hostname)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # _unparsable() below and aiosmtpd's own smtp_MAIL/smtp_RCPT parse the same text:
        # remember the last answer so each command parses its address once.
        cached = self._last_getaddr
        if cached is not None and cached[0] == arg:
            return cached[1]
        plain = _PLAIN_ANGLE_ADDR.match(arg)
        rest = arg[plain.end() :] if plain is not None else ""
        if rest[:1] in (" ", "\t"):
            rest = rest.lstrip()  # as the tokenizer's folding white space after the ">"
        result: tuple[str | None, str | None]
        if plain is not None and not rest.startswith("("):  # a comment: the tokenizer's
            address = plain.group(1)
            limit = self.local_part_limit
            too_long = limit and len(address.rpartition("@")[0]) > limit
            result = (None, None) if too_long else (address, rest)
        else:
            result = super()._getaddr(arg)
            address = result[0]
            limit = self.local_part_limit
            if limit and address and len(address.rpartition("@")[0].encode()) > limit:
                result = (None, None)  # aiosmtpd counts characters; the limit is octets
        self._last_getaddr = (arg, result)
        return result

    def _unparsable(self, keyword: str, arg: str | None) -> str | None:
        """The address text when aiosmtpd would refuse it as malformed, else None."""
        rest = self._strip_command_keyword(keyword, arg or "")
        if rest is None or not rest.strip() or self._getaddr(rest)[0] is not None:
            return None
        text = rest.strip()
        if text.startswith("<") and ">" in text:
            text = text[1 : text.index(">")]
        return text

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self._refuse_bad_characters(arg):
            return
        address = self._unparsable("TO:", arg)
        if address is None or self.envelope is None or not self.envelope.mail_from:
            await super().smtp_RCPT(arg)
            return
        if await self.check_helo_needed() or await self.check_auth_needed("RCPT"):
            return
        await self.push(await self._call_handler_hook("RCPT", address, []))

    async def smtp_AUTH(self, arg: str) -> None:
        if self.envelope is not None and self.envelope.mail_from:
            await self.push(str(replies.AUTH_IN_TRANSACTION))  # RFC 4954 §4
            return
        # aiosmtpd refuses AUTH without TLS before any hook runs, with its own sentence.
        session = self.session
        if (
            self._auth_require_tls
            and not self._tls_protocol
            and session is not None
            and session.extended_smtp
        ):
            await self.push(str(replies.AUTH_NEEDS_TLS))
            return
        await super().smtp_AUTH(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self._refuse_bad_characters(arg):
            return
        if self._unparsable("FROM:", arg) is not None and self.session is not None:
            if not (await self.check_helo_needed() or await self.check_auth_needed("MAIL")):
                await self.push(str(replies.SENDER_SYNTAX))
            return
        rest = self._strip_command_keyword("FROM:", arg or "")
        if rest is None or not rest.strip().startswith("<>"):
            params_text = self._getaddr(rest)[1] if rest else None
            size_refusal = self._size_refusal(
                self._getparams(params_text.upper().split()) if params_text else None
            )
            if size_refusal is not None and self.session is not None:
                if not (await self.check_helo_needed() or await self.check_auth_needed("MAIL")):
                    await self.push(str(size_refusal))
                return
            await super().smtp_MAIL(arg)
            return
        # The null reverse-path (RFC 5321 §4.5.5): aiosmtpd cannot parse it, so we record it
        # as the NULL_SENDER marker. Parameters other than SIZE/BODY are not accepted.
        if await self.check_helo_needed() or await self.check_auth_needed("MAIL"):
            return
        assert self.envelope is not None
        if self.envelope.mail_from:
            await self.push("503 5.5.1 Error: nested MAIL command")
            return
        options = rest.strip()[2:].upper().split()
        params = self._getparams(options)
        if params is None or set(params) - {"SIZE", "BODY", "SMTPUTF8"}:
            await self.push("555 5.5.4 MAIL FROM parameters not recognized or not implemented")
            return
        size_refusal = self._size_refusal(params)
        if size_refusal is not None:
            await self.push(str(size_refusal))
            return
        self.envelope.smtp_utf8 = params.get("SMTPUTF8") is True
        status = await self._call_handler_hook("MAIL", NULL_SENDER, options)
        await self.push(status)

    def _size_refusal(self, params: dict[str, str | bool] | None) -> replies.Reply | None:
        """The reply to a bad ``SIZE`` parameter (RFC 1870), for every sender alike."""
        size = (params or {}).get("SIZE")
        if size is None:
            return None
        if not isinstance(size, str) or not (size.isascii() and size.isdigit()):
            return replies.SIZE_SYNTAX
        if self.data_size_limit and int(size) > self.data_size_limit:
            return replies.MESSAGE_TOO_BIG
        return None


async def start_listener(
    handler: SessionHandler,
    config: SmtpConfig,
    host: str,
    port: int,
    tls_context: ssl.SSLContext | None,
) -> tuple[asyncio.Server, Listener]:
    """Start listening; returns the server and its shared ``Listener`` state."""
    listener = Listener(config.max_sessions, client_table(config))
    rules = SessionRules.from_config(config)

    def factory() -> GatewaySMTP:
        return GatewaySMTP(
            handler,
            listener,
            rules,
            hostname=config.hostname,  # set explicitly: aiosmtpd would call getfqdn()
            ident="gateway ESMTP",
            data_size_limit=config.max_message_size,
            line_length_limit=config.max_line_length,
            local_part_limit=_LOCAL_PART_LIMIT,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=tls_context,
            require_starttls=False,
            auth_required=False,
            auth_require_tls=True,
            timeout=config.command_timeout.total_seconds(),
            command_call_limit=None,
        )

    server = await asyncio.get_running_loop().create_server(
        factory, host=host, port=port, reuse_port=config.reuse_port or None
    )
    return server, listener


def tls_context_from(cert: str, key: str) -> ssl.SSLContext | None:
    """The server-side TLS context for STARTTLS, or ``None`` when no certificate is set."""
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
