"""A message's stream at the intake (issue 15 item 3): decided at ``RCPT``, read again at
the end of ``DATA``.

Owns: the stream a transaction starts with (the login's default, else the tenant's, else
``transactional``), reading ``X-Gateway-Stream`` from the received bytes at the end of
``DATA`` (a bad or ambiguous value gets a precise reply) and removing it from the bytes, and
the per-recipient suppression check again when the header names another stream than the one
``RCPT`` checked. Does not own: the checks themselves (``services.checks``), recording a
refusal or queueing (``smtp_in.handler``), or what a stream means (``core.streams``).

The header arrives after ``RCPT``: each ``RCPT`` is checked against the default stream, and
a message whose header names another stream has each recipient checked again for that
stream; one suppressed for it is refused there, per recipient (recorded like a refusal at
``RCPT``: a ``rejected`` event with reason ``suppressed``), and not queued. SMTP has one
reply to ``DATA``: the message is accepted for the others, and refused (``550 5.7.1``) when
none is left.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.core import replies
from gateway.core.model import Reason
from gateway.core.replies import Reply
from gateway.core.streams import STREAM_HEADER, Stream, parse_stream
from gateway.mail.stream_header import stream_values, without_stream_header

if TYPE_CHECKING:
    from aiosmtpd.smtp import Session

    from gateway.core.model import Suppression, Tenant
    from gateway.services.checks import RecipientChecker, Verdict

#: RFC 3463 5.6.0 (a problem with the message's content): the header names no stream.
BAD_STREAM = Reply(
    550,
    "5.6.0",
    f'The {STREAM_HEADER} header must be "transactional" or "marketing", in one field',
)


def login_of(session: Session) -> str | None:
    """The SMTP username the session authenticated as (``smtp_in.auth``), if any."""
    found = getattr(session, "gateway_login", None)
    return found if isinstance(found, str) else None


def stream_at_rcpt(session: Session, tenant: Tenant | None) -> Stream:
    """The stream ``RCPT`` checks against: the login's default, else the tenant's, else
    ``transactional`` (the header, read at the end of ``DATA``, may name another)."""
    if tenant is None:
        return Stream.TRANSACTIONAL
    return tenant.streams.stream_for(login_of(session))


@dataclass(frozen=True, slots=True)
class StreamRead:
    """What the end of ``DATA`` read: the message's stream, its bytes without the header and
    the recipients still accepted for that stream (``reply`` set instead when the header is
    bad or no recipient is left)."""

    stream: Stream
    content: bytes
    reply: Reply | None = None
    recipients: tuple[str, ...] = ()


def read_stream(raw: bytes, default: Stream) -> StreamRead:
    """The stream ``raw``'s header names (``default`` without one) and ``raw`` without it.

    Several fields are accepted when they agree; a value naming no stream, or fields that
    disagree, get :data:`BAD_STREAM`.
    """
    values = stream_values(raw)
    if not values:
        return StreamRead(default, raw)
    named = {parse_stream(v) for v in values}
    if None in named or len(named) != 1:
        return StreamRead(default, raw, BAD_STREAM)
    stream = named.pop()
    assert stream is not None
    return StreamRead(stream, without_stream_header(raw))


class Transaction(Protocol):
    """What :func:`for_stream` reads and sets of the handler's transaction."""

    tenant: Tenant | None
    recipients: list[str]
    stream: Stream
    #: Recipients to hold rather than refuse (issue 15 item 2; ``smtp_in.holding``).
    held: dict[str, Suppression]


async def for_stream(
    checker: RecipientChecker,
    state: Transaction,
    raw: bytes,
    refuse: Callable[..., Awaitable[object]],
    hold: Callable[[Verdict], bool] | None = None,
) -> StreamRead:
    """The end of ``DATA``: the message's stream (``state.stream``, checked at ``RCPT``,
    without a header; set to the header's), its bytes without the header, and its
    recipients for that stream.

    Args:
        checker: the intake's checklist.
        state: the transaction (tenant, recipients accepted at ``RCPT``, their stream).
        raw: the message as received.
        refuse: records the refusal of a recipient suppressed for the header's stream, as
            ``refuse(tenant, address, reply, reason=reason)`` (the handler's refusal
            recorder); a store that fails the check keeps the recipient (the relay checks
            again, with the message's stream, before each attempt).
        hold: keeps a suppressed recipient in the message to be held instead (issue 15:
            a tenant that holds; ``smtp_in.holding.hold_or_refuse``), ``True`` when it did.
    """
    tenant, checked = state.tenant, state.stream
    read = read_stream(raw, checked)
    if read.reply is None:
        state.stream = read.stream
    if read.reply is not None or tenant is None or read.stream is checked:
        return StreamRead(read.stream, read.content, read.reply, tuple(state.recipients))

    async def suppressed(address: str, verdict: Verdict) -> bool:
        if verdict.reason is Reason.STORE_UNAVAILABLE or verdict.reply is None:
            return True
        if hold is not None and hold(verdict):
            return True
        await refuse(tenant, address, verdict.reply, reason=verdict.reason)
        return False

    recipients = state.recipients
    # Held at RCPT for the stream checked there: the header's stream decides afresh.
    state.held.clear()
    kept = await recheck(checker, tenant.name, recipients, read.stream, suppressed)
    if not kept:
        text = f"Every recipient is on the suppression list for {read.stream.value} mail"
        return StreamRead(read.stream, read.content, replies.SUPPRESSED.with_text(text))
    return StreamRead(read.stream, read.content, None, tuple(kept))


async def recheck(
    checker: RecipientChecker,
    tenant: str,
    recipients: Sequence[str],
    stream: Stream,
    suppressed: Callable[[str, Verdict], Awaitable[bool]],
) -> list[str]:
    """The recipients still accepted for ``stream`` (checked at ``RCPT`` for another).

    Args:
        checker: the intake's checklist (its suppression check only).
        tenant: the tenant's name.
        recipients: the transaction's accepted recipients (canonical), in order.
        stream: the stream the header names.
        suppressed: called for each recipient whose address is suppressed for ``stream``
            (its refusal verdict); ``True`` keeps it in the message (held, say), ``False``
            leaves it out (refused, recorded by the caller).
    """
    kept: list[str] = []
    for address in recipients:
        verdict = await checker.suppressed(address, tenant, stream)
        if verdict is None or await suppressed(address, verdict):
            kept.append(address)
    return kept
