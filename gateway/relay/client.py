"""The outbound SMTP transaction: one message to one host, over aiosmtplib, with a pool.

Owns: connecting (per-phase timeouts), EHLO/HELO, STARTTLS policy, AUTH for a smarthost,
MAIL/RCPT/DATA with the right ESMTP parameters (sent together when the server offers
PIPELINING, RFC 2920: one write and one wait instead of one per command), dot-stuffing,
partitioning recipients into accepted/deferred/bounced, connection reuse, and the
translation of every aiosmtplib and socket error into ``TransientRelayError`` /
``PermanentRelayError`` with a ``Reply`` and the ``Phase`` it happened in.

Does not own: which host to try (``core.routing``), retries and back-off (the
scheduler), classification of the replies (``bounce``), or the message bytes: content
is sent exactly as given, apart from the transparency rules of RFC 5321 §4.5.2.

What a caller gets::

    send() -> TransactionResult       the session worked; every recipient is in exactly
                                      one of accepted / deferred / bounced
    send() raises TransientRelayError  the session failed for everyone: try the next MX
                                      or defer (network errors, timeouts, 4xx greeting,
                                      EHLO or MAIL, 421 anywhere, malformed replies, TLS
                                      required but unavailable, a drop after the dot)
    send() raises PermanentRelayError  5xx greeting, 5xx EHLO and HELO, 5xx MAIL FROM, or a
                                      server that greets (or answers EHLO) with our own
                                      name: a mail loop (``MAIL_LOOP``, 5.4.6)

A 5xx greeting is reported as the server said it (permanent, ``Phase.GREETING``); what it
means for the recipients is the relay worker's decision (it defers).

A 4xx/5xx reply to DATA or after the final dot lands in ``deferred``/``bounced`` for the
recipients accepted at RCPT, so recipients refused at RCPT keep their own reply.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

from aiosmtplib import (
    SMTP,
    SMTPHeloError,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)

from gateway.config import RelayConfig
from gateway.core import replies
from gateway.core.errors import PermanentRelayError, Phase, RelayError, TransientRelayError
from gateway.core.replies import Reply
from gateway.relay.pool import Connection, ConnectionPool, Key, abort
from gateway.relay.wire import (
    NET_ERRORS,
    PipelinedReplies,
    client_tls_context,
    command,
    describe,
    failure,
    in_phase,
    is_ip,
    open_socket,
    payload_off_the_loop,
    quote,
    synth,
    utf8_headers,
)

log = logging.getLogger(__name__)

_QUIT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """The outcome of one SMTP transaction, partitioned by recipient.

    Args:
        host: the host (name or address) the session was with.
        accepted: recipient -> the reply after the final dot.
        deferred: recipient -> a 4xx reply (RCPT, DATA or after the dot).
        bounced: recipient -> a 5xx reply (RCPT, DATA or after the dot).
        tls: whether the session ran over TLS.
        kept: whether the session stays open, idle, for the next message.
    """

    host: str
    accepted: dict[str, Reply]
    deferred: dict[str, Reply]
    bounced: dict[str, Reply]
    tls: bool
    kept: bool = False


class _TlsFailed(Exception):
    """Opportunistic STARTTLS failed mid-handshake: the connection is gone."""


class SmtpClient:
    """Sends messages to remote SMTP servers, reusing connections per destination.

    Args:
        config: the ``[relay]`` section: TLS policy, timeouts, pool limits.
        helo_name: our name in EHLO/HELO (RFC 5321 §4.1.1.1); never looked up.
        tls_context: a client TLS context to use instead of the one built from
            ``config.tls_verify`` (for a private CA, or tests).
        own_names: our other host names (``smtp.hostname``); a server greeting us, or
            answering EHLO, with one of them or with ``helo_name`` is ourselves: a loop.

    Raises:
        ValueError: ``helo_name`` is empty or has spaces or control characters.
    """

    def __init__(
        self,
        config: RelayConfig,
        helo_name: str,
        *,
        tls_context: ssl.SSLContext | None = None,
        own_names: Sequence[str] = (),
    ) -> None:
        if not helo_name or any(c.isspace() or ord(c) < 32 for c in helo_name):
            msg = f"invalid HELO name: {helo_name!r}"
            raise ValueError(msg)
        self._config = config
        self._helo = helo_name
        self._own_names = frozenset(
            n.lower().rstrip(".") for n in (helo_name, *own_names) if n and n.strip(".")
        )
        self._connect_timeout = config.connect_timeout.total_seconds()
        self._command_timeout = config.command_timeout.total_seconds()
        self._data_timeout = config.data_timeout.total_seconds()
        self._tls_context = tls_context or client_tls_context(verify=config.tls_verify)
        self._pool = ConnectionPool(
            config.per_destination_concurrency, config.idle_timeout.total_seconds()
        )

    # --- public -----------------------------------------------------------------------------
    async def send(
        self,
        host: str,
        port: int,
        mail_from: str,
        recipients: Sequence[str],
        content: bytes,
        *,
        server_name: str | None = None,
        auth: tuple[str, str] | None = None,
        max_messages: int | None = None,
    ) -> TransactionResult:
        """Deliver ``content`` to ``recipients`` through ``host:port`` in one transaction.

        Args:
            host: the address (or name) to connect to.
            port: the TCP port.
            mail_from: the reverse-path; ``""`` or ``"<>"`` for the null sender.
            recipients: the forward-paths, at least one.
            content: the message, headers and body, CRLF line endings.
            server_name: the MX host name when ``host`` is an address: used for SNI and
                certificate verification.
            auth: ``(user, password)`` for a smarthost (RFC 4954); sent only over TLS
                unless ``relay.tls`` is ``"off"``.
            max_messages: transactions on one session before it is closed (the site's
                shaping); ``relay.max_messages_per_connection`` when ``None``.

        Raises:
            TransientRelayError: the session failed for every recipient; retry later.
            PermanentRelayError: the server refused the whole transaction.
        """
        if not recipients:
            msg = "send() needs at least one recipient"
            raise ValueError(msg)
        key: Key = (host.lower(), port, server_name, auth[0] if auth else None)
        conn = await self._pool.checkout(key)
        reusable = False
        try:
            reused = conn is not None
            if conn is None:
                conn = await self._open(host, port, server_name, auth)
            try:
                result = await self._transaction(conn, host, mail_from, recipients, content)
            except TransientRelayError as exc:
                # Every transaction on a pooled connection ended cleanly (the final dot's
                # reply, or our RSET), so no RSET precedes the next MAIL (RFC 5321
                # §4.1.1.4). If the connection died while idle, MAIL is where it shows:
                # nothing was sent yet, so drop it and try once on a fresh connection.
                if not (reused and exc.phase is Phase.MAIL and exc.reply.enhanced == "4.4.2"):
                    raise
                abort(conn)
                conn = None
                conn = await self._open(host, port, server_name, auth)
                result = await self._transaction(conn, host, mail_from, recipients, content)
            conn.messages += 1
            reusable = not conn.broken
            most = max_messages or self._config.max_messages_per_connection
            if reusable and conn.messages >= most:
                reusable = False
                await self._quit(conn)
            return replace(result, kept=reusable)
        finally:
            self._pool.checkin(key, conn, reusable=reusable)

    async def close(self) -> None:
        """Close every pooled connection (QUIT, bounded in time)."""
        await self._pool.close(self._quit)

    async def _reset(self, conn: Connection) -> bool:
        """RSET before reusing a connection (RFC 5321 §4.1.1.5); false if it is dead."""
        try:
            await conn.smtp.rset(timeout=self._command_timeout)
        except NET_ERRORS:
            return False
        return True

    async def _quit(self, conn: Connection) -> None:
        """QUIT politely (RFC 5321 §4.1.1.10), then close whatever the answer."""
        try:
            async with asyncio.timeout(min(self._command_timeout, _QUIT_TIMEOUT)):
                await conn.smtp.quit()
        except NET_ERRORS:
            pass
        finally:
            conn.smtp.close()

    # --- session set-up ---------------------------------------------------------------------
    async def _open(
        self, host: str, port: int, server_name: str | None, auth: tuple[str, str] | None
    ) -> Connection:
        try:
            return await self._session(host, port, server_name, auth, try_tls=True)
        except _TlsFailed as failed:
            # Opportunistic TLS (RFC 3207 §4): a failed handshake leaves no usable
            # connection; deliver in the clear on a new one rather than not at all.
            log.warning("STARTTLS with %s failed, retrying without TLS: %s", host, failed)
            return await self._session(host, port, server_name, auth, try_tls=False)

    async def _session(
        self,
        host: str,
        port: int,
        server_name: str | None,
        auth: tuple[str, str] | None,
        *,
        try_tls: bool,
    ) -> Connection:
        smtp = await self._connect(host, port)
        try:
            await self._ehlo(smtp, host)
            tls = False
            if try_tls and self._config.tls != "off":
                tls = await self._starttls(smtp, host, server_name)
            if auth is not None:
                await self._auth(smtp, host, auth, tls=tls)
        except BaseException:
            smtp.close()
            raise
        return Connection(smtp, tls)

    async def _connect(self, host: str, port: int) -> SMTP:
        """TCP connect (``connect_timeout``), then the greeting (``command_timeout``)."""
        where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        try:
            async with asyncio.timeout(self._connect_timeout):
                sock = await open_socket(host, port)
        except TimeoutError:
            reply = Reply(451, "4.4.1", f"Timed out connecting to {where}")
            raise TransientRelayError(reply, Phase.CONNECT, host) from None
        except ConnectionRefusedError:
            # Worded so the reply classifier does not read our own words as a remote block
            # ("connection refused by" is a blocklist phrase in remote replies).
            reply = Reply(451, "4.4.1", f"Could not connect to {where}: connection refused")
            raise TransientRelayError(reply, Phase.CONNECT, host) from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            reply = synth(451, "4.4.1", f"Could not connect to {where}: {reason}")
            raise TransientRelayError(reply, Phase.CONNECT, host) from None
        smtp = SMTP(local_hostname=self._helo, start_tls=False, timeout=self._command_timeout)
        try:
            with in_phase(Phase.GREETING, host):
                greeting = await smtp.connect(sock=sock, timeout=self._command_timeout)
            self._check_loop(greeting.message, Phase.GREETING, host)
        except BaseException:
            smtp.close()
            sock.close()
            raise
        return smtp

    def _check_loop(self, message: str, phase: Phase, host: str) -> None:
        """RFC 5321 §5.1 and §6.3 (loop detection): a server naming itself with one of our
        names, in its greeting or its EHLO reply, is this gateway (an MX record, or a name
        resolving to one of our listeners). Delivering would queue the message again."""
        words = message.split(None, 1)
        name = words[0].lower().rstrip(".") if words else ""
        if name in self._own_names:
            text = f"{host} greeted us with our own name {name}: mail loop"
            raise PermanentRelayError(replies.MAIL_LOOP.with_text(text), phase, host)

    async def _ehlo(self, smtp: SMTP, host: str) -> None:
        with in_phase(Phase.EHLO, host):
            try:
                response = await smtp.ehlo(timeout=self._command_timeout)
            except SMTPHeloError as exc:
                # RFC 5321 §3.2: a server that refuses EHLO may still speak plain SMTP.
                if not (500 <= exc.code < 600 and smtp.is_connected):
                    raise
                response = await smtp.helo(timeout=self._command_timeout)
        self._check_loop(response.message, Phase.EHLO, host)

    async def _starttls(self, smtp: SMTP, host: str, server_name: str | None) -> bool:
        """Upgrade to TLS per ``relay.tls``; true when the session is now encrypted."""
        required = self._config.tls == "required"
        if not smtp.supports_extension("starttls"):
            if required:
                reply = Reply(451, "4.7.5", f"{host} does not offer STARTTLS and TLS is required")
                raise TransientRelayError(reply, Phase.STARTTLS, host)
            return False
        sni = server_name or (None if is_ip(host) else host)
        if sni is None and self._tls_context.check_hostname:
            # Verification needs a name (RFC 6125 §6); without one, behave as if
            # STARTTLS were not offered rather than burn the connection.
            if required:
                text = f"No server name to verify the certificate of {host} against"
                raise TransientRelayError(synth(451, "4.7.5", text), Phase.STARTTLS, host)
            return False
        try:
            await smtp.starttls(
                server_hostname=sni, tls_context=self._tls_context, timeout=self._command_timeout
            )
        except SMTPResponseException as exc:
            if exc.code == 421 or exc.code < 400 or not smtp.is_connected:
                raise failure(exc, Phase.STARTTLS, host) from None
            # RFC 3207 §4: e.g. "454 TLS not available"; the session itself is fine.
            if required:
                text = f"{host} refused STARTTLS: {exc.code} {exc.message}"
                reply = synth(451, "4.7.5", text)
                raise TransientRelayError(reply, Phase.STARTTLS, host) from None
            return False
        except (*NET_ERRORS, ssl.SSLError) as exc:
            text = f"TLS handshake with {host} failed: {describe(exc)}"
            if required:
                reply = synth(451, "4.7.5", text)
                raise TransientRelayError(reply, Phase.STARTTLS, host) from None
            raise _TlsFailed(text) from None
        # RFC 3207 §4.2: forget what was learnt in the clear and ask again.
        await self._ehlo(smtp, host)
        return True

    async def _auth(self, smtp: SMTP, host: str, auth: tuple[str, str], *, tls: bool) -> None:
        if not tls and self._config.tls != "off":
            reply = Reply(451, "4.7.11", f"Refusing to send credentials to {host} without TLS")
            raise TransientRelayError(reply, Phase.AUTH, host)
        user, password = auth
        try:
            with in_phase(Phase.AUTH, host):
                await smtp.login(user, password, timeout=self._command_timeout)
        except PermanentRelayError as exc:
            # Wrong smarthost credentials are our configuration problem, not the
            # recipients': defer (and alert) instead of bouncing everyone.
            text = f"{host} refused our credentials: {exc.reply}"
            reply = synth(451, "4.7.8", text)
            raise TransientRelayError(reply, Phase.AUTH, host) from None

    # --- the transaction --------------------------------------------------------------------
    async def _transaction(
        self,
        conn: Connection,
        host: str,
        mail_from: str,
        recipients: Sequence[str],
        content: bytes,
    ) -> TransactionResult:
        smtp = conn.smtp
        sender = "" if mail_from in ("", "<>") else mail_from
        utf8_offered = smtp.supports_extension("smtputf8")
        if not sender.isascii() and not utf8_offered:
            # RFC 6531 §3.2: a non-ASCII address needs SMTPUTF8 end to end.
            reply = Reply(553, "5.6.7", f"{host} does not support SMTPUTF8 for the sender")
            raise PermanentRelayError(reply, Phase.MAIL, host)
        options = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(content)}")  # RFC 1870 §6
        if not content.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")  # RFC 6152 §3
        needs_utf8 = not all(a.isascii() for a in (sender, *recipients)) or utf8_headers(content)
        if needs_utf8 and utf8_offered:
            options.append("SMTPUTF8")  # RFC 6531 §3.4
        encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
        if smtp.supports_extension("pipelining"):
            pipelined = await self._pipelined(
                conn, host, sender, options, encoding, recipients, content
            )
            if pipelined is not None:
                return pipelined

        with in_phase(Phase.MAIL, host):
            await smtp.mail(
                sender, options=options, encoding=encoding, timeout=self._command_timeout
            )

        deferred: dict[str, Reply] = {}
        bounced: dict[str, Reply] = {}
        valid: list[str] = []
        for rcpt in recipients:
            if not rcpt.isascii() and not utf8_offered:
                bounced[rcpt] = Reply(553, "5.6.7", f"{host} does not support SMTPUTF8 addresses")
                continue
            with in_phase(Phase.RCPT, host):
                try:
                    await smtp.rcpt(rcpt, encoding=encoding, timeout=self._command_timeout)
                except SMTPRecipientRefused as exc:
                    if exc.code == 421 or not 400 <= exc.code < 600:
                        raise  # the whole session is over (421) or the reply is nonsense
                    reply = Reply.parse(exc.code, exc.message)
                    (deferred if reply.is_transient else bounced)[rcpt] = reply
                    continue
                except ValueError:
                    bounced[rcpt] = Reply(553, "5.1.3", "The recipient address cannot be sent")
                    continue
            valid.append(rcpt)

        accepted: dict[str, Reply] = {}
        if not valid:
            # Nobody to send to: abort the transaction and keep the connection.
            if not await self._reset(conn):
                conn.broken = True
        else:
            final = await self._data(conn, host, content)
            target = accepted if final.is_success else deferred if final.is_transient else bounced
            target.update(dict.fromkeys(valid, final))
        return TransactionResult(host, accepted, deferred, bounced, conn.tls)

    async def _pipelined(
        self,
        conn: Connection,
        host: str,
        sender: str,
        options: list[str],
        encoding: str,
        recipients: Sequence[str],
        content: bytes,
    ) -> TransactionResult | None:
        """The transaction with PIPELINING (RFC 2920): MAIL, every RCPT and DATA in one
        write, the replies read in order; then the content and the reply to the dot.

        Same partition and errors as the step-by-step dialogue. ``None`` when no RCPT would
        be sent (all refused locally): the caller then runs the plain dialogue (MAIL, RSET).
        """
        smtp = conn.smtp
        with in_phase(Phase.MAIL, host):
            mail = command(b"MAIL FROM:" + quote(sender).encode(encoding), options)
        bounced: dict[str, Reply] = {}
        sent: list[str] = []
        lines = [mail]
        for rcpt in recipients:
            if not rcpt.isascii() and encoding != "utf-8":
                bounced[rcpt] = Reply(553, "5.6.7", f"{host} does not support SMTPUTF8 addresses")
                continue
            try:
                lines.append(command(b"RCPT TO:" + quote(rcpt).encode(encoding), ()))
            except ValueError:
                bounced[rcpt] = Reply(553, "5.1.3", "The recipient address cannot be sent")
                continue
            sent.append(rcpt)
        if not sent:
            return None
        lines.append(b"DATA\r\n")
        protocol = smtp.protocol
        # A socket or TLS transport (uvloop's are not asyncio.Transport subclasses).
        transport = cast("asyncio.Transport | None", protocol and protocol.transport)
        if protocol is None or transport is None or transport.is_closing():
            with in_phase(Phase.MAIL, host):
                raise SMTPServerDisconnected("Connection lost")
        replies_in = PipelinedReplies(protocol)
        transport.set_protocol(replies_in)
        try:
            return await self._pipelined_dialogue(
                conn, transport, replies_in, host, lines, sent, bounced, content
            )
        finally:
            if not transport.is_closing():
                transport.set_protocol(protocol)
            if replies_in.pending():
                conn.broken = True  # replies we did not expect: out of step, do not reuse

    async def _pipelined_dialogue(
        self,
        conn: Connection,
        transport: asyncio.Transport,
        replies_in: PipelinedReplies,
        host: str,
        lines: list[bytes],
        sent: list[str],
        bounced: dict[str, Reply],
        content: bytes,
    ) -> TransactionResult:
        timeout = self._command_timeout
        with in_phase(Phase.MAIL, host):
            transport.write(b"".join(lines))
            response = await replies_in.read(timeout)
            if response.code != 250:
                raise SMTPSenderRefused(response.code, response.message, "")
        deferred: dict[str, Reply] = {}
        valid: list[str] = []
        for rcpt in sent:
            with in_phase(Phase.RCPT, host):
                response = await replies_in.read(timeout)
                if response.code not in (250, 251):
                    if response.code == 421 or not 400 <= response.code < 600:
                        raise SMTPRecipientRefused(response.code, response.message, rcpt)
                    reply = Reply.parse(response.code, response.message)
                    (deferred if reply.is_transient else bounced)[rcpt] = reply
                    continue
            valid.append(rcpt)
        with in_phase(Phase.DATA, host):
            response = await replies_in.read(timeout)
        accepted: dict[str, Reply] = {}
        if response.code != 354:
            if response.code == 421 or not 400 <= response.code < 600:
                raise failure(
                    SMTPResponseException(response.code, response.message), Phase.DATA, host
                )
            if valid:
                # RFC 5321 §4.1.1.4: no transaction took place for the accepted ones.
                final = Reply.parse(response.code, response.message)
                (deferred if final.is_transient else bounced).update(dict.fromkeys(valid, final))
            # A refused DATA (as expected when every RCPT was refused) leaves the MAIL
            # transaction open: RSET, so the connection is clean for the next message.
            try:
                with in_phase(Phase.DATA, host):
                    transport.write(b"RSET\r\n")
                    if (await replies_in.read(timeout)).code != 250:
                        conn.broken = True
            except RelayError:
                conn.broken = True
            return TransactionResult(host, accepted, deferred, bounced, conn.tls)
        if not valid:
            # RFC 2920 §3.1: DATA accepted with no valid recipient: end it with a lone dot.
            with in_phase(Phase.DATA, host):
                transport.write(b".\r\n")
                await replies_in.read(timeout)
            conn.broken = True
            return TransactionResult(host, accepted, deferred, bounced, conn.tls)
        payload = await payload_off_the_loop(content)
        with in_phase(Phase.DOT, host):
            transport.write(payload)
            response = await replies_in.read(self._data_timeout)
        if response.code == 421 or not 200 <= response.code < 600 or 300 <= response.code < 400:
            conn.smtp.close()
            raise failure(SMTPResponseException(response.code, response.message), Phase.DOT, host)
        final = Reply.parse(response.code, response.message)
        target = accepted if final.is_success else deferred if final.is_transient else bounced
        target.update(dict.fromkeys(valid, final))
        return TransactionResult(host, accepted, deferred, bounced, conn.tls)

    async def _data(self, conn: Connection, host: str, content: bytes) -> Reply:
        """DATA, the content, the final dot; the server's reply to the dot (or to DATA)."""
        smtp = conn.smtp
        with in_phase(Phase.DATA, host):
            response = await smtp.execute_command(b"DATA", timeout=self._command_timeout)
        if response.code != 354:
            if response.code == 421 or not 400 <= response.code < 600:
                raise failure(
                    SMTPResponseException(response.code, response.message), Phase.DATA, host
                )
            # RFC 5321 §4.1.1.4: no transaction took place; the session goes on.
            return Reply.parse(response.code, response.message)
        payload = await payload_off_the_loop(content)
        try:
            with in_phase(Phase.DOT, host):
                # aiosmtplib's data() cannot tell a refused DATA from a refused message,
                # so we write the stuffed content ourselves and read the one reply.
                protocol = smtp.protocol
                if protocol is None:
                    msg = "Connection lost"
                    raise ConnectionResetError(msg)
                protocol.write(payload)
                response = await protocol.read_response(timeout=self._data_timeout)
        except RelayError:
            smtp.close()
            raise
        if response.code == 421 or not 200 <= response.code < 600 or 300 <= response.code < 400:
            smtp.close()
            raise failure(SMTPResponseException(response.code, response.message), Phase.DOT, host)
        return Reply.parse(response.code, response.message)
