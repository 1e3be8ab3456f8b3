"""Hostile clients: the limits and the protocol discipline of one SMTP session.

Owns: ``GuardedSMTP``, the layer of aiosmtpd's ``SMTP`` under ``smtp_in.server``'s
``GatewaySMTP`` that decides when a session is closed for what the client does rather than
for what it says: per-client connection limits at connect (``smtp_in.limits``), the
greeting delay and early talkers, pipelining before the EHLO reply, HTTP request lines, the
session's lifetime, the idle timeout and the minimum data rate during DATA, and the error
budget. Does not own: what a command means (``smtp_in.handler``) or the replies aiosmtpd
hard-codes (``smtp_in.server``).

Postfix is the model (``smtpd_client_connection_count_limit``, ``smtpd_hard_error_limit``,
``smtpd_min_data_rate``, postscreen's pregreet and pipelining tests), each named below:

* **Per-client limits.** ``ClientTable.admit`` at connect; beyond them ``421 4.7.0`` naming
  the limit, and the connection is closed.
* **Early talkers** (postscreen's pregreet test). An untrusted client waits
  ``smtp.greeting_delay`` for the greeting; bytes sent before it get ``554 5.5.0`` and
  the connection is closed.
* **Pipelining before the EHLO reply** (RFC 2920 §3.1: a client pipelines only after the
  EHLO reply announced PIPELINING). An untrusted client with a command still unread when
  a reply is sent before its EHLO was answered gets ``554 5.5.0`` and is closed. Trusted
  and authenticated clients are not checked (they may only pipeline after EHLO anyway,
  and the gateway's own tools pipeline after it).
* **HTTP on the SMTP port** (``GET``, ``POST``, ``CONNECT``, ``HEAD``, ``PUT``, ``Host:``):
  ``554 5.5.0`` and closed at once, not after aiosmtpd's fifth unknown command.
* **Time.** ``smtp.session_lifetime`` bounds a session, whatever it does (``NOOP`` every few
  seconds kept one forever): ``421 4.7.0``. Idle for ``smtp.command_timeout`` between
  commands: ``421 4.4.2`` (aiosmtpd closed without a word). During DATA the time allowed
  is ``smtp.command_timeout`` plus one second per ``smtp.min_data_rate`` bytes received,
  and never more than ``smtp.command_timeout`` without a byte: ``421 4.7.0``.
* **Error budget.** Every ``4xx``/``5xx`` reply of the session counts (but for as many
  ``452 4.5.3`` too-many-recipients replies as ``smtp.max_recipients``); at
  ``smtp.error_hard_limit`` the session gets ``421 4.7.0`` and is closed. The handler
  records the first ``smtp.error_soft_limit`` refusals one by one, and counts the rest
  (``GatewaySession.unrecorded``) for one summary event and log line at the session's end.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, AnyStr

from aiosmtpd.smtp import SMTP, Session, TLSSetupException

from gateway.core import replies
from gateway.core.model import Event, EventType
from gateway.observe.logging import log_event
from gateway.smtp_in.limits import Address, ClientLimits, ClientTable, client_address

if TYPE_CHECKING:
    from gateway.config import SmtpConfig
    from gateway.core.model import Reason
    from gateway.core.replies import Reply

log = logging.getLogger("gateway.smtp_in")

# Request lines of HTTP (RFC 9110 methods a cross-protocol attack uses, and the Host field).
_TOO_MANY_RECIPIENTS = str(replies.TOO_MANY_RECIPIENTS)
_HTTP_COMMANDS = ("GET", "POST", "CONNECT", "HEAD", "PUT", "OPTIONS", "HOST:")


@dataclass(frozen=True, slots=True)
class SessionRules:
    """The ``[smtp]`` keys one session is held to (see the module docstring)."""

    lifetime: float
    min_data_rate: int
    error_soft_limit: int
    error_hard_limit: int
    greeting_delay: float
    overshoot_allowance: int = 0  # ``452 4.5.3`` too-many-recipients replies not counted

    @classmethod
    def unlimited(cls) -> SessionRules:
        """No lifetime, rate, budget or delay to speak of (a listener built without config)."""
        return cls(
            lifetime=86400.0,
            min_data_rate=0,
            error_soft_limit=10**9,
            error_hard_limit=10**9,
            greeting_delay=0.0,
        )

    @classmethod
    def from_config(cls, config: SmtpConfig) -> SessionRules:
        return cls(
            lifetime=config.session_lifetime.total_seconds(),
            min_data_rate=config.min_data_rate,
            error_soft_limit=config.error_soft_limit,
            error_hard_limit=config.error_hard_limit,
            greeting_delay=config.greeting_delay.total_seconds(),
            overshoot_allowance=config.max_recipients,
        )


def client_table(config: SmtpConfig) -> ClientTable:
    """The per-client limits of ``config`` for one listener."""
    return ClientTable(
        ClientLimits(
            config.max_sessions_per_client,
            config.max_sessions_per_network,
            config.max_connections_per_minute,
        ),
        ClientLimits(
            config.trusted_sessions_per_client, None, config.trusted_connections_per_minute
        ),
        tuple(config.trusted_networks),
    )


class GatewaySession(Session):
    """aiosmtpd's session plus what the guard and the handler count in it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.refusals = 0  # 4xx/5xx replies sent in this session, counted against the budget
        self.overshoot = 0  # "too many recipients" replies within the allowance, not counted
        self.unrecorded = 0  # refusals the handler counted instead of recording them
        self.error_soft_limit = 0  # set by the guard: refusals recorded one by one
        # The last refusal counted, not recorded: (tenant, address, reply, reason, mail from)
        self.last_unrecorded: tuple[str, str, Reply, Reason, str] | None = None


class GuardedSMTP(SMTP):
    """aiosmtpd's SMTP with the session guard described in the module docstring."""

    def __init__(
        self, handler: Any, rules: SessionRules, clients: ClientTable, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self.rules = rules
        self.clients = clients
        self._client: Address | None = None
        self._checked = False  # untrusted: held to the discipline checks
        self._greeted = False
        self._early_bytes = 0
        self._ehlo_answered = False
        self._closing = False
        self._data_started = 0.0
        self._data_bytes = 0
        self._in_guarded_data = False
        for command in _HTTP_COMMANDS:
            self._smtp_methods[command] = self._http_request

    def _create_session(self) -> Session:
        session = GatewaySession(self.loop)
        session.error_soft_limit = self.rules.error_soft_limit
        # STARTTLS starts a new session (RFC 3207 §4.2): the count carries over.
        old = self.session
        if isinstance(old, GatewaySession):
            session.refusals = old.refusals
            session.overshoot = old.overshoot
            session.unrecorded = old.unrecorded
            session.last_unrecorded = old.last_unrecorded
        return session

    # --- connect, greeting, lifetime ------------------------------------------------------

    async def _handle_client(self) -> None:
        peer: Any = self.session.peer if self.session is not None else None
        client = client_address(peer)
        if client is not None:
            refusal = self.clients.admit(client, self.loop.time())
            if refusal is not None:
                if self.clients.first_refusal(client, self.loop.time()):
                    log_event(log, "smtp.client_limit", client=str(client), reply=str(refusal))
                await self._refuse_and_close(refusal)
                return
            self._client = client
            self._checked = not self.clients.is_trusted(client)
        lifetime = self.loop.call_later(self.rules.lifetime, self._lifetime_over)
        try:
            if self._checked and self.rules.greeting_delay > 0:
                await asyncio.sleep(self.rules.greeting_delay)
            if self._checked and self._early_bytes:
                log_event(log, "smtp.early_talker", client=str(client))
                await self._refuse_and_close(replies.EARLY_TALKER)
                return
            self._greeted = True
            await super()._handle_client()
        finally:
            lifetime.cancel()
            if self._client is not None:
                self.clients.leave(self._client)
                self._client = None

    def _lifetime_over(self) -> None:
        log_event(log, "smtp.session_lifetime", client=str(self._client))
        self._say_and_close(replies.SESSION_TOO_LONG)

    def _say_and_close(self, reply: Reply) -> None:
        """Send ``reply`` and close, from a timer (no await: nothing may be cut short)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._closing = True
        transport.write(f"{reply}\r\n".encode())  # type: ignore[attr-defined]  # a Transport, typed Base
        transport.close()

    async def _refuse_and_close(self, reply: Reply) -> None:
        """Send ``reply`` and end the session: the commands still buffered (pipelined) are
        never run, as aiosmtpd's QUIT does it (the session's task is cancelled)."""
        self._closing = True
        await SMTP.push(self, str(reply))
        if self.transport is not None:
            self.transport.close()
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()
            # Delivered at the task's next suspension, and commands already buffered run
            # without one (a reader with data does not wait): suspend here.
            await asyncio.sleep(0)

    def data_received(self, data: bytes) -> None:
        if not self._greeted:
            self._early_bytes += len(data)
        elif self._in_guarded_data:
            self._data_bytes += len(data)
            self._arm_data_deadline()
        super().data_received(data)

    # --- timeouts ------------------------------------------------------------------------

    def _timeout_cb(self) -> None:
        reply = replies.DATA_TOO_SLOW if self._in_guarded_data else replies.IDLE_TIMEOUT
        log_event(log, "smtp.timeout", client=str(self._client), reply=str(reply))
        self._say_and_close(reply)

    def _arm_data_deadline(self) -> None:
        """The DATA deadline (module docstring): ``command_timeout`` plus a second per
        ``min_data_rate`` bytes since DATA began, at most ``command_timeout`` from now."""
        now = self.loop.time()
        idle = float(self._timeout_duration)
        deadline = now + idle
        if self.rules.min_data_rate:
            earned = self._data_started + idle + self._data_bytes / self.rules.min_data_rate
            deadline = min(deadline, earned)
        self._reset_timeout(max(deadline - now, 0.001))

    async def smtp_DATA(self, arg: str) -> None:
        self._in_guarded_data = True
        self._data_started = self.loop.time()
        self._data_bytes = 0
        self._arm_data_deadline()
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_guarded_data = False
            if self.transport is not None:
                self._reset_timeout()  # the idle timeout again, from the reply on

    # --- discipline ------------------------------------------------------------------------

    async def smtp_EHLO(self, hostname: str) -> None:
        await super().smtp_EHLO(hostname)
        self._ehlo_answered = self.session is not None and self.session.extended_smtp

    async def _http_request(self, arg: str | None) -> None:
        log_event(log, "smtp.http_request", logging.WARNING, client=str(self._client))
        await self._refuse_and_close(replies.NOT_SMTP)

    def _pipelined_too_early(self) -> bool:
        """An untrusted client sent a command we had not asked for yet: before its EHLO was
        answered, a command is still unread while we reply (RFC 2920 §3.1)."""
        if not self._checked or self._ehlo_answered or not self._greeted:
            return False
        session = self.session
        if session is not None and session.authenticated:
            return False
        buffered: Any = getattr(self._reader, "_buffer", b"")
        return len(buffered) > 0

    async def push(self, status: AnyStr) -> None:
        if self._closing:
            return
        text = status.decode() if isinstance(status, bytes) else status
        if self._pipelined_too_early():
            log_event(log, "smtp.pipelining_before_ehlo", client=str(self._client))
            await self._refuse_and_close(replies.PIPELINING_BEFORE_EHLO)
            return
        await super().push(text)
        if text.startswith("235 ") and self._client is not None:  # AUTH succeeded
            self.clients.authenticated(self._client, self.loop.time())
        session = self.session
        if not isinstance(session, GatewaySession) or text[3:4] not in (" ", ""):
            return  # a continuation line: the reply's last line counts
        if text == _TOO_MANY_RECIPIENTS and session.overshoot < self.rules.overshoot_allowance:
            # A client may send more recipients than smtp.max_recipients and send the rest
            # in the next transaction (RFC 5321 §4.5.3.1.10): as many again are not errors
            # (Postfix's smtpd_recipient_overshoot_limit).
            session.overshoot += 1
        elif text[:1] in ("4", "5") and not text.startswith("421"):
            session.refusals += 1
            if session.refusals >= self.rules.error_hard_limit:
                log_event(
                    log, "smtp.error_limit", client=str(self._client), refusals=session.refusals
                )
                await self._refuse_and_close(replies.TOO_MANY_ERRORS)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # Anyone can fail a handshake: a line without a traceback (the session ends).
            cause = error.__cause__ or error
            log_event(
                log,
                "smtp.tls_handshake_failed",
                logging.WARNING,
                client=str(self._client),
                error=f"{type(cause).__name__}: {cause}"[:300],
            )
            return str(replies.TLS_HANDSHAKE_FAILED)
        return await super().handle_exception(error)


def past_soft_limit(session: Session) -> bool:
    """The session has had ``smtp.error_soft_limit`` refusals: further ones are counted
    (``GatewaySession.unrecorded``), not recorded and logged one by one."""
    if not isinstance(session, GatewaySession):
        return False
    if session.refusals + session.overshoot < session.error_soft_limit:
        return False
    session.unrecorded += 1
    return True


def refusals_summary(session: GatewaySession, now: datetime) -> Event | None:
    """One log line, and one ``rejected`` event to record (on the last refusal's address,
    its count in ``details``), for the refusals of a session past the soft limit; no event
    for refusals without a tenant (bounce tokens, syntax): the log line only."""
    unrecorded, session.unrecorded = session.unrecorded, 0
    last = session.last_unrecorded
    peer: Any = session.peer
    log_event(
        log,
        "smtp.refusals_summary",
        logging.WARNING,
        client=str(peer[0]) if peer else "",
        refusals=session.refusals,
        unrecorded=unrecorded,
    )
    if last is None:
        return None
    tenant, address, reply, reason, mail_from = last
    details = {
        "mail_from": mail_from,
        "reason": reason.value,
        "unrecorded_refusals": str(unrecorded),
    }
    return Event(
        None,
        tenant,
        address,
        EventType.REJECTED,
        now,
        reply_code=reply.code,
        enhanced=reply.enhanced,
        text=f"{reply.text} ({unrecorded} more refusals in this session not recorded)",
        reason=reason,
        details=details,
    )
