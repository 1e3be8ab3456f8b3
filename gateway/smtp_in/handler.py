"""The intake handler: aiosmtpd hooks for EHLO, AUTH, MAIL, RCPT and DATA.

Owns: who may send (AUTH or a trusted network, else only bounces), the per-command
checklists, the headers we prepend, the durable commit before ``250``, and one structured
log line per transaction. Does not own: the recipient checks themselves
(``gateway.services.checks``), the message store (``Store`` port), bounce parsing (``bounce``) or
delivery (``relay``, woken through ``on_queued``).

Message content stays the bytes received: we only prepend ``Received:`` (and
``Message-ID:``/``Date:`` when missing), never parse and regenerate the message.

Tenants come from the tenant directory (``Tenants`` port), read at ``MAIL``: a change made
through the admin API on any node applies to the next transaction about a second later.
A transaction of a tenant with a quota holds each accepted recipient against it (the quota
step of ``checks``); the holds become queued recipients in the enqueue's own write, and are
given back when the transaction ends any other way: ``RSET``, a new ``MAIL`` after a reset,
``QUIT``, a refused or failed ``DATA``, the connection's end (``end_session``).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

from gateway.core import replies
from gateway.core.errors import StoreError, StoreUnavailable
from gateway.core.ids import new_queue_id
from gateway.core.model import Event, EventType, NewMessage, Reason, Suppression, Tenant
from gateway.core.streams import Stream
from gateway.mail import rawmail as headers
from gateway.observe.logging import log_event
from gateway.services.checks import RecipientChecker, Verdict, canonical
from gateway.smtp_in.auth import AuthDialogue, AuthThrottle, client_ip
from gateway.smtp_in.guard import GatewaySession, past_soft_limit, refusals_summary
from gateway.smtp_in.holding import hold_after_enqueue, hold_or_refuse, holder, paused_reply
from gateway.smtp_in.server import NULL_SENDER
from gateway.smtp_in.streams import for_stream, stream_at_rcpt

if TYPE_CHECKING:
    from gateway.config import BounceConfig, SmtpConfig
    from gateway.core.ports import Clock, Store, Tenants
    from gateway.core.replies import Reply
    from gateway.services.holds import HoldKeeper

log = logging.getLogger("gateway.smtp_in")

BounceSink = Callable[[str, list[str], bytes], Awaitable["Reply"]]
"""``(mail_from, bounce_recipients, content) -> reply`` for mail to ``bounce.domain``."""

BounceCheck = Callable[[str], bool]
"""True when an address at ``bounce.domain`` carries a valid token."""

_SAFE_HELO = re.compile(r"[^A-Za-z0-9.\-\[\]:_]")
# A From: field, including the obsolete form with white space before the colon (RFC 5322
# §4.5.3) that mail readers still display.
_FROM_FIELD = re.compile(rb"^from[ \t]*:", re.IGNORECASE | re.MULTILINE)
_LOCAL_PART_LIMIT = 64  # octets
# A Received: field (RFC 5321 §6.3: their count is the hop count), obsolete form included.
_RECEIVED_FIELD = re.compile(rb"^received[ \t]*:", re.IGNORECASE | re.MULTILINE)


@dataclass(slots=True)
class Transaction:
    """What the handler knows about the current mail transaction (one per envelope)."""

    tenant: Tenant | None = None
    recipients: list[str] = field(default_factory=list)
    bounce_recipients: list[str] = field(default_factory=list)
    # Accepted recipients with a ``possible_typo`` warning, recorded once the message is queued.
    possible_typos: dict[str, Verdict] = field(default_factory=dict)
    # The quota hold id of a tenant with a quota (``Store.reserve_quota``), else "".
    hold: str = ""
    # Mail to postmaster@ (RFC 5321 §4.5.1), delivered to ``smtp.postmaster_address``.
    postmaster: bool = False
    stream: Stream = Stream.TRANSACTIONAL  # checked at RCPT; the header's at DATA (streams)
    held: dict[str, Suppression] = field(default_factory=dict)  # to hold once queued (#15)


def _open_hold(session: Session) -> str:
    """The hold id of the session's transaction that may hold quota still ("" if none)."""
    return str(getattr(session, "gateway_hold", ""))


def _set_open_hold(session: Session, hold: str) -> None:
    session.gateway_hold = hold  # type: ignore[attr-defined]  # our field on aiosmtpd's Session


def _state(envelope: Envelope) -> Transaction:
    state = getattr(envelope, "gateway", None)
    if state is None:
        state = Transaction()
        envelope.gateway = state  # type: ignore[attr-defined]  # our field on its Envelope
    return state


class IntakeHandler:
    """aiosmtpd handler object (see the module docstring).

    Args:
        config: the ``[smtp]`` section.
        bounce: the ``[bounce]`` section (which domain takes bounces without AUTH).
        store: durable queue.
        checker: the recipient checklist.
        clock: time source.
        tenants: the tenant directory (settings as every node sees them).
        on_queued: called after each commit so the relay attempts at once.
        bounce_check: validates a bounce-domain recipient's token.
        bounce_sink: receives mail to valid bounce addresses.
        holds: holds mail to suppressed addresses of tenants that hold (issue 15).
    """

    def __init__(
        self,
        config: SmtpConfig,
        bounce: BounceConfig,
        store: Store,
        checker: RecipientChecker,
        clock: Clock,
        tenants: Tenants,
        on_queued: Callable[[], None] = lambda: None,
        bounce_check: BounceCheck | None = None,
        bounce_sink: BounceSink | None = None,
        holds: HoldKeeper | None = None,
    ) -> None:
        self.config = config
        self.bounce_domain = bounce.domain.lower()
        self.store = store
        self.checker = checker
        self.clock = clock
        self.tenants = tenants
        self.on_queued = on_queued
        self.bounce_check = bounce_check
        self.bounce_sink = bounce_sink
        self.holds = holds  # hold instead of refuse (issue 15); None: always refuse
        self.throttle = AuthThrottle(config.auth_max_failures, config.auth_failure_window)
        self.auth = AuthDialogue(store, clock, self.throttle)
        # Holds of sessions that ended mid-transaction, for ``run_releases``.
        self._abandoned: list[str] = []
        # One summary event per session with refusals past the soft limit, for the same.
        self._summaries: list[Event] = []
        self._postmaster_domains = {self.bounce_domain, config.hostname.lower()}
        self._released = asyncio.Event()

    # --- who is speaking --------------------------------------------------------------------

    def _trusted(self, session: Session) -> bool:
        try:
            ip = ipaddress.ip_address(client_ip(session))
        except (ValueError, TypeError, IndexError):
            return False
        return any(ip in net for net in self.config.trusted_networks)

    # --- quota holds ------------------------------------------------------------------------

    async def _release_hold(self, session: Session) -> None:
        """Give back what the session's last transaction holds (it ended without a queued
        message). A failure is logged: the holds then lapse at their expiry."""
        hold = _open_hold(session)
        if not hold:
            return
        _set_open_hold(session, "")
        try:
            await self.store.release_quota(hold)
        except StoreError as exc:
            log_event(log, "smtp.quota_release_failed", logging.WARNING, error=str(exc))

    def end_session(self, session: Session) -> None:
        """The connection is gone (``QUIT``, the client or the network hung up): what its
        last transaction holds is given back by ``run_releases``, at once.

        Called from the session's task as it ends, often cancelled (twice, on a hang-up),
        where awaiting the store could be cut short.
        """
        hold = _open_hold(session)
        if hold:
            _set_open_hold(session, "")
            self._abandoned.append(hold)
            self._released.set()
        if isinstance(session, GatewaySession) and session.unrecorded:
            self._summarise_refusals(session)

    async def run_releases(self, stopping: asyncio.Event) -> None:
        """Give back the holds of sessions that ended without ending their transaction,
        until ``stopping`` is set and none is left (a long-running task of ``app``)."""
        while True:
            stop = asyncio.ensure_future(stopping.wait())
            woken = asyncio.ensure_future(self._released.wait())
            try:
                await asyncio.wait({stop, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                woken.cancel()
            self._released.clear()
            while self._abandoned:
                hold = self._abandoned.pop()
                try:
                    await self.store.release_quota(hold)
                except StoreError as exc:  # they lapse at their expiry
                    log_event(log, "smtp.quota_release_failed", logging.WARNING, error=str(exc))
            while self._summaries:
                summary = self._summaries.pop()
                try:
                    await self.store.record_event(summary)
                except StoreError:
                    log_event(log, "smtp.refusal_not_recorded", logging.ERROR, rcpt=summary.address)
            if stopping.is_set():
                return

    # --- hooks ----------------------------------------------------------------------------------

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        extra = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        return [*responses[:-1], *extra, responses[-1]]

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: Envelope, args: list[str]
    ) -> str | None:
        return await self.auth(server, session, args)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # A transaction reset without a word to the handler (EHLO, an oversized DATA).
        await self._release_hold(session)
        state = _state(envelope)
        if session.authenticated:
            state.tenant = await self.tenants.tenant(str(session.auth_data))
        elif self._trusted(session):
            state.tenant = await self.tenants.tenant(self.config.default_tenant)
        if (paused := paused_reply(state.tenant)) is not None:
            return paused
        state.stream = stream_at_rcpt(session, state.tenant)
        if state.tenant is not None and (state.tenant.hourly_quota or state.tenant.daily_quota):
            state.hold = secrets.token_hex(12)
        # Unauthenticated, untrusted clients may only send to bounce.domain: they are refused
        # at RCPT (530 5.7.0) for any other recipient, so MAIL itself is accepted.
        if address != NULL_SENDER and not address.isascii() and not envelope.smtp_utf8:
            return str(replies.ADDRESS_NEEDS_SMTPUTF8)  # RFC 6531 §3.4
        if address != NULL_SENDER:
            norm = canonical(address)
            if norm is None:
                return str(replies.SENDER_SYNTAX)
            allowed = state.tenant.allowed_sender_domains if state.tenant else ()
            if allowed and norm.rpartition("@")[2] not in allowed:
                return str(replies.SENDER_DOMAIN_NOT_ALLOWED)
            address = norm
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return str(replies.SENDER_OK)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        state = _state(envelope)
        if not address.isascii() and not envelope.smtp_utf8:
            return str(replies.ADDRESS_NEEDS_SMTPUTF8)  # RFC 6531 §3.4
        local, _, domain = address.rpartition("@")
        domain = domain.lower()
        if local.lower() == "postmaster" and domain in self._postmaster_domains:
            return self._postmaster_rcpt(envelope, state, address)
        if state.postmaster:
            return str(replies.POSTMASTER_ALONE)
        if domain == self.bounce_domain:
            return self._bounce_rcpt(session, envelope, state, address)
        if state.tenant is None:
            return str(replies.AUTH_REQUIRED)
        if state.bounce_recipients:
            return str(replies.TOO_MANY_RECIPIENTS.with_text("Send bounces in their own message"))
        if len(local.encode()) > _LOCAL_PART_LIMIT:
            # RFC 5321 §4.5.3.1.1. Not for bounce.domain (above): its opt-out addresses are
            # ours, and longer.
            reply = replies.LOCAL_PART_TOO_LONG
            await self._record_refusal(
                session, state.tenant, address, reply, envelope, Reason.INVALID
            )
            return str(reply)
        if len(state.recipients) >= self.config.max_recipients:
            reply = replies.TOO_MANY_RECIPIENTS
            await self._record_refusal(
                session,
                state.tenant,
                canonical(address) or address,
                reply,
                envelope,
                Reason.TOO_MANY_RECIPIENTS,
            )
            return str(reply)
        verdict = await self.checker.check(address, state.tenant, state.hold, state.stream)
        if state.hold:
            _set_open_hold(session, state.hold)
        verdict = hold_or_refuse(self.holds, state.tenant, verdict, state.held)
        if verdict.reply is not None:
            assert verdict.reason is not None  # every refusal names the check that refused
            await self._record_refusal(
                session,
                state.tenant,
                verdict.address,
                verdict.reply,
                envelope,
                verdict.reason,
                verdict.suggestion,
            )
            return str(verdict.reply)
        if verdict.warning:
            log_event(
                log,
                "smtp.rcpt_warning",
                logging.WARNING,
                rcpt=verdict.address,
                warning=verdict.warning,
            )
            if verdict.warning_reason is Reason.POSSIBLE_TYPO and verdict.suggestion:
                state.possible_typos[verdict.address] = verdict
        if verdict.address not in state.recipients:
            state.recipients.append(verdict.address)
        envelope.rcpt_tos.append(address)  # as given: relayed so (NewMessage.rcpt_to)
        return str(replies.RECIPIENT_OK)

    def _postmaster_rcpt(self, envelope: Envelope, state: Transaction, address: str) -> str:
        """``postmaster@`` the bounce domain or our host name, from anyone (RFC 5321
        §4.5.1): delivered to ``smtp.postmaster_address``, in a message of its own."""
        if not self.config.postmaster_address:
            return str(replies.NO_POSTMASTER)
        if state.recipients or state.bounce_recipients:
            return str(replies.POSTMASTER_ALONE)
        if not state.postmaster:
            state.postmaster = True
            envelope.rcpt_tos.append(address)
        return str(replies.RECIPIENT_OK)

    def _bounce_rcpt(
        self, session: Session, envelope: Envelope, state: Transaction, address: str
    ) -> str:
        if state.recipients:
            return str(replies.TOO_MANY_RECIPIENTS.with_text("Send bounces in their own message"))
        if self.bounce_check is None or not self.bounce_check(address):
            if not past_soft_limit(session):
                log_event(log, "smtp.bounce_token_invalid", logging.WARNING, rcpt=address[:320])
            return str(replies.BOUNCE_TOKEN_INVALID)
        if address.lower() in (known.lower() for known in state.bounce_recipients):
            # A token names its own message's recipients: accepting it again (1,000 times)
            # would only multiply the report.
            return str(replies.BOUNCE_REPEATED)
        state.bounce_recipients.append(address)
        envelope.rcpt_tos.append(address)
        return str(replies.BOUNCE_ACCEPTED)

    def _summarise_refusals(self, session: GatewaySession) -> None:
        """The summary of a session's refusals past the soft limit (``guard``), queued."""
        event = refusals_summary(session, self.clock.now())
        if event is not None:
            self._summaries.append(event)
            self._released.set()

    async def _record_refusal(
        self,
        session: Session,
        tenant: Tenant,
        address: str,
        reply: Reply,
        envelope: Envelope,
        reason: Reason,
        suggestion: str | None = None,
    ) -> None:
        """Record a refusal as a ``rejected`` event: the reply sent, the check's typed reason
        as the event's reason (also kept in ``details["reason"]``, where refusals recorded
        before it was typed had it), and in ``details`` the suggested address. The API, the
        page and the webhooks read them as data, never from the reply's words."""
        if past_soft_limit(session):
            assert isinstance(session, GatewaySession)
            mail_from = str(envelope.mail_from)[:320]
            session.last_unrecorded = (tenant.name, address[:320], reply, reason, mail_from)
            return
        details = {"mail_from": str(envelope.mail_from)[:320], "reason": reason.value}
        if suggestion:
            details["suggestion"] = suggestion[:320]
        event = Event(
            None,
            tenant.name,
            address[:320],
            EventType.REJECTED,
            self.clock.now(),
            reply_code=reply.code,
            enhanced=reply.enhanced,
            text=reply.text,
            reason=reason,
            details=details,
        )
        try:
            await self.store.record_event(event)
        except StoreError:
            log_event(log, "smtp.refusal_not_recorded", logging.ERROR, rcpt=address)
        log_event(log, "smtp.rcpt_refused", tenant=tenant.name, rcpt=address, reply=str(reply))

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Errors are answered here rather than in handle_exception: aiosmtpd resets the
        # transaction only when the DATA hook returns, so a raised error would leave the
        # session stuck ("503 nested MAIL") for the client's retry.
        try:
            return await self._data(session, envelope)
        except Exception as error:  # a bug or an unexpected failure: temporary, logged
            log.error("smtp.unexpected_error", exc_info=error)
            return str(replies.STORE_FAILED.with_text("Temporary server error; please try again"))
        finally:
            # Queued: the enqueue settled the holds. Anything else ends the transaction too.
            await self._release_hold(session)

    async def _data(self, session: Session, envelope: Envelope) -> str:
        state = _state(envelope)
        raw = envelope.original_content or b""
        if b"\x00" in raw:
            # Refused, not stripped (README, "Hostile clients"): a NUL is never forwarded,
            # and a receiver that drops NULs would read "\r\n\x00.\r\n" as the end of data.
            return str(replies.NUL_IN_DATA)
        head = headers.header_block(raw)
        if len(_RECEIVED_FIELD.findall(head)) > self.config.max_hops:
            log_event(log, "smtp.too_many_hops", logging.WARNING, client=client_ip(session))
            return str(replies.TOO_MANY_HOPS)  # RFC 5321 §6.3: a loop
        if state.postmaster:
            return await self._postmaster_data(session, envelope, raw, head)
        if state.bounce_recipients:
            return await self._bounce_data(envelope, state, raw)
        if state.tenant is None or not state.recipients:
            return str(replies.NO_VALID_RECIPIENTS)
        from_domain = headers.from_domain(head)
        # Exactly one From: (RFC 5322 §3.6): with several, a reader may show one we did not
        # check against the tenant's allowed sender domains.
        if from_domain is None or len(_FROM_FIELD.findall(head)) != 1:
            return str(replies.FROM_SYNTAX)
        allowed = state.tenant.allowed_sender_domains
        if allowed and from_domain not in allowed:
            return str(replies.FROM_DOMAIN_NOT_ALLOWED)
        refuse = functools.partial(self._record_refusal, session, envelope=envelope)
        read = await for_stream(self.checker, state, raw, refuse, holder(self.holds, state))
        if read.reply is not None:
            return str(read.reply)
        return await self._queue(
            session, envelope, state, state.tenant.name, read.recipients, read.content, head
        )

    async def _postmaster_data(
        self, session: Session, envelope: Envelope, raw: bytes, head: bytes
    ) -> str:
        """Mail to postmaster@: queued for ``smtp.postmaster_address`` as the default
        tenant's, whoever sent it; no checklist (the address is the operator's own)."""
        state = _state(envelope)
        address = self.config.postmaster_address
        log_event(log, "smtp.postmaster", client=client_ip(session), rcpt=address)
        return await self._queue(
            session, envelope, state, self.config.default_tenant, (address,), raw, head
        )

    async def _queue(
        self,
        session: Session,
        envelope: Envelope,
        state: Transaction,
        tenant: str,
        recipients: tuple[str, ...],
        raw: bytes,
        head: bytes,
    ) -> str:
        """Prepend our header lines, commit, then answer ``250`` (accepted means durable)."""
        queue_id = new_queue_id()
        now = self.clock.now()
        prefix = headers.received(
            helo=_SAFE_HELO.sub("", session.host_name or "unknown")[:255],
            peer=client_ip(session),
            by=self.config.hostname,
            queue_id=queue_id,
            tls=session.ssl is not None,
            auth=bool(session.authenticated),
            recipient=recipients[0] if len(recipients) == 1 else None,
            when=format_datetime(now),
        )
        message_id = headers.value(head, b"message-id")
        if message_id is None:
            message_id = f"<{queue_id}@{self.config.hostname}>"
            prefix += b"Message-ID: " + message_id.encode() + b"\r\n"
        if headers.value(head, b"date") is None:
            prefix += b"Date: " + format_datetime(now).encode() + b"\r\n"
        message = NewMessage(
            queue_id=queue_id,
            tenant=tenant,
            mail_from="" if envelope.mail_from == NULL_SENDER else str(envelope.mail_from),
            recipients=recipients,
            content=prefix + raw,
            message_id=message_id[:998],
            subject=headers.subject(head),
            received_at=now,
            client_address=client_ip(session),
            hold=state.hold,
            rcpt_to=tuple(envelope.rcpt_tos),
            stream=state.stream,
        )
        try:
            result = await self.store.enqueue(message, self.config.duplicate_window)
        except StoreUnavailable as exc:
            log_event(log, "smtp.queue_failed", logging.ERROR, queue_id=queue_id, error=str(exc))
            return str(replies.STORE_FULL if exc.full else replies.STORE_FAILED)
        except StoreError as exc:
            log_event(log, "smtp.queue_failed", logging.ERROR, queue_id=queue_id, error=str(exc))
            return str(replies.STORE_FAILED)
        _set_open_hold(session, "")  # settled in the enqueue's transaction
        await hold_after_enqueue(self.holds, state.tenant, result, state.held)
        if state.possible_typos and result.queued:
            await self._record_possible_typos(state, message, result.queue_id, result.queued)
        if result.queued:
            self.on_queued()
        log_event(
            log,
            "smtp.accepted",
            queue_id=result.queue_id,
            tenant=message.tenant,
            client=message.client_address,
            mail_from=message.mail_from,
            size=len(raw),
            rcpts=len(result.queued),
            duplicates=len(result.duplicates),
            tls=session.ssl is not None,
        )
        return f"{replies.QUEUED} {result.queue_id}"

    async def _record_possible_typos(
        self, state: Transaction, message: NewMessage, queue_id: str, queued: tuple[str, ...]
    ) -> None:
        """A ``possible_typo`` event on each queued recipient accepted with that warning.

        After the commit: the message is safe whatever happens here, and a warning that
        fails to be written is logged, never turned into a refusal. The status is left as it
        is (the event is a note for support, not a state change).
        """
        warned = [address for address in queued if address in state.possible_typos]
        if not warned:
            return
        try:
            rows = await self.store.recipients_of(queue_id)
            ids = {view.address: view.recipient_id for view in rows}
            for address in warned:
                verdict = state.possible_typos[address]
                await self.store.record_event(
                    Event(
                        ids.get(address),
                        message.tenant,
                        address,
                        EventType.POSSIBLE_TYPO,
                        message.received_at,
                        queue_id=queue_id,
                        text=verdict.warning,
                        reason=Reason.POSSIBLE_TYPO,
                        details={"suggestion": str(verdict.suggestion)[:320]},
                    )
                )
        except Exception as exc:  # committed: nothing here may turn the 250 into a 451
            log_event(
                log, "smtp.warning_not_recorded", logging.ERROR, queue_id=queue_id, error=repr(exc)
            )

    async def _bounce_data(self, envelope: Envelope, state: Transaction, raw: bytes) -> str:
        if self.bounce_sink is None:
            return str(replies.BOUNCE_TOKEN_INVALID)
        mail_from = "" if envelope.mail_from == NULL_SENDER else str(envelope.mail_from)
        reply = await self.bounce_sink(mail_from, state.bounce_recipients, raw)
        return str(reply)

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        await self._release_hold(session)
        return MISSING

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> Any:
        await self._release_hold(session)
        return MISSING

    async def handle_exception(self, error: Exception) -> str:
        """A bug or an unexpected failure in a hook: a temporary refusal, never internals.

        aiosmtpd would otherwise answer ``500 Error: (ExceptionType) text``; a 4xx makes the
        client retry, and nothing was queued for this command.
        """
        log.error("smtp.unexpected_error", exc_info=error)
        return str(replies.STORE_FAILED.with_text("Temporary server error; please try again"))
