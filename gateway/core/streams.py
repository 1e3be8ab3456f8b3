"""Streams, suppression scopes and probation: which suppression applies to which message.

Owns: the vocabulary of issue 15 items 1 and 3 — a message's :class:`Stream`
(``transactional`` or ``marketing``), a suppression's :class:`Scope` (``all`` or one stream),
what scope each kind of objection suppresses, the ``X-Gateway-Stream`` header's name and
values, and the categories whose first final failure during a probation blocks again.
Does not own: where a stream is decided (``smtp_in``), where suppressions are kept
(``store``) or the auto-block policy itself (``core.policy``).

Why scopes (LGPD): an opt-out withdraws consent for the purpose it came from. A customer
who leaves the newsletter still gets invoices, which have their own legal basis. A hard
bounce says the mailbox cannot receive at all: every stream.

One address may carry one suppression per scope at once (the store's key is
``(tenant, address, scope)``): a marketing opt-out and an ``all`` hard bounce coexist, and
lifting the hard bounce (an unblock naming ``scope=all``) leaves the opt-out in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.core.category import Category

__all__ = [
    "PROBATION_CATEGORIES",
    "STREAM_HEADER",
    "ComplaintScope",
    "Probation",
    "Scope",
    "Stream",
    "StreamSettings",
    "applies",
    "duration_text",
    "parse_stream",
    "scope_of",
]

#: The header an application names its message's stream with; removed before relaying.
STREAM_HEADER = "X-Gateway-Stream"


class Stream(StrEnum):
    """What a message is for."""

    TRANSACTIONAL = "transactional"  # invoices, receipts, password resets
    MARKETING = "marketing"  # newsletters, offers


class Scope(StrEnum):
    """Which streams a suppression stops."""

    ALL = "all"
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


class ComplaintScope(StrEnum):
    """A tenant's setting: what a complaint (ARF abuse/fraud) suppresses."""

    STREAM = "stream"  # the stream of the message complained about
    ALL = "all"  # every stream


#: The categories whose first final failure during a probation blocks again at once
#: (reason ``probation_failure``): the ones that say the mailbox does not work.
PROBATION_CATEGORIES = frozenset(
    {
        Category.NONEXISTENT_ADDRESS,
        Category.MAILBOX_DISABLED,
        Category.MAILBOX_FULL,
        Category.RECEIVING_PROBLEM,
    }
)


def applies(scope: Scope, stream: Stream) -> bool:
    """Whether a suppression of ``scope`` stops a message of ``stream``."""
    return scope is Scope.ALL or scope.value == stream.value


def scope_of(stream: Stream) -> Scope:
    """The scope that stops exactly ``stream`` (what an opt-out from it suppresses)."""
    return Scope(stream.value)


def parse_stream(value: str) -> Stream | None:
    """A header's or a setting's stream (case and surrounding blanks ignored); ``None``
    when it names none."""
    try:
        return Stream(value.strip().lower())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """A tenant's own stream and probation settings (``None``: the default).

    Args:
        probation: how long an unblock's probation lasts (default ``[policy] probation``).
        default_stream: a message's stream without a header or a login default
            (default ``transactional``).
        complaint_scope: what a complaint suppresses (default ``stream``).
        logins: (username, default stream) of the tenant's logins that name one.
    """

    probation: timedelta | None = None
    default_stream: Stream | None = None
    complaint_scope: ComplaintScope | None = None
    logins: tuple[tuple[str, Stream], ...] = ()

    def stream_for(self, username: str | None) -> Stream:
        """The stream of a message without a header, sent by ``username`` (``None``: a
        trusted client without a login): the login's default, else the tenant's."""
        for login, stream in self.logins:
            if login == username:
                return stream
        return self.default_stream or Stream.TRANSACTIONAL

    def complaint(self, stream: Stream) -> Scope:
        """What a complaint about a message of ``stream`` suppresses."""
        if self.complaint_scope is ComplaintScope.ALL:
            return Scope.ALL
        return scope_of(stream)


@dataclass(frozen=True, slots=True)
class Probation:
    """The probation an unblock started for one tenant's address.

    Args:
        tenant: the tenant.
        address: the address (as stored).
        since: when the unblock happened.
        until: when the probation ends.
        unblock_event_id: the ``unsuppressed`` event of the unblock (what a
            ``probation_failure`` names).
        success_at: the last delivery since ``since``, if any (shown to support).
    """

    tenant: str
    address: str
    since: datetime
    until: datetime
    unblock_event_id: int | None = None
    success_at: datetime | None = None

    def running(self, now: datetime) -> bool:
        return self.since <= now < self.until


def duration_text(length: timedelta | None) -> str | None:
    """``length`` as the config writes durations (``30d``, ``12h``, ``90m``, ``45s``)."""
    if length is None:
        return None
    seconds = length.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
