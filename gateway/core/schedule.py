"""Retry scheduling: when to try a deferred recipient again, and when to give up.

Owns: the back-off arithmetic (:func:`next_attempt`), the expiry rule
(:func:`should_expire`) and reading a remote server's "retry in N minutes" hint
(:func:`retry_hint`). Does not own: the clock (``core.ports.Clock``), claiming due rows
(``relay.scheduler``) or the configured intervals (``config.RelayConfig``).

RFC 5321 §4.5.4.1: retry at least 30 minutes apart once the first retries are done, and
give up after at least 4-5 days. The configured intervals start shorter (greylisting
releases after a few minutes) and the last one repeats.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

__all__ = ["MAX_HINT", "next_attempt", "retry_hint", "should_expire"]

#: The longest delay a remote hint can impose.
MAX_HINT = timedelta(hours=24)
_HINT_CAP_SECONDS = 30 * 24 * 3600  # parse bound: never build an absurd timedelta

_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "segundo": 1,
    "segundos": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "minuto": 60,
    "minutos": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "hora": 3600,
    "horas": 3600,
}

# A retry keyword, a short gap without digits or sentence ends, then "<number> <unit>".
# English and Portuguese wordings seen from greylisting and rate-limiting servers.
_HINT = re.compile(
    r"""
    (?:try\ again|retry|retrying|greylist\w*|graylist\w*|wait|
       tente\ novamente|tente\ de\ novo|aguarde|espere)
    [^0-9.;\r\n]{0,30}?
    (?<![0-9])([0-9]{1,9})\s*
    (seconds|second|secs|sec|segundos|segundo|s|
     minutes|minute|mins|min|minutos|minuto|m|
     hours|hour|hrs|hr|horas|hora|h)
    (?![a-z])
    """,
    re.IGNORECASE | re.VERBOSE,
)


def retry_hint(text: str) -> timedelta | None:
    """Read a retry delay from a reply text.

    Understands e.g. "try again in 5 minutes", "retry in 300 seconds", "Please try again
    later (retry after 10 min)", "greylisted for 60 seconds", "tente novamente em 5
    minutos". Bare numbers, reply codes and dates are not hints.

    Args:
        text: the remote server's reply text (any length; only the first match counts).

    Returns:
        The delay, or ``None`` when the text carries no hint.
    """
    match = _HINT.search(text)
    if match is None:
        return None
    seconds = int(match.group(1)) * _UNITS[match.group(2).lower()]
    return timedelta(seconds=min(seconds, _HINT_CAP_SECONDS))


def next_attempt(
    attempts: int,
    now: datetime,
    received_at: datetime,
    intervals: Sequence[timedelta],
    lifetime: timedelta,
    hint: timedelta | None = None,
) -> datetime | None:
    """When to try a recipient again after a deferral, or ``None`` to expire it.

    After attempt ``n`` the delay is ``intervals[n - 1]``; the last interval repeats. A
    remote hint replaces that delay for this retry, bounded to ``[intervals[0], 24h]`` so
    a server cannot make us hammer it or wait for days. No retry is scheduled past the
    deadline ``received_at + lifetime``: when the delay would overshoot, the final attempt
    lands on the deadline, and a deferral at or after the deadline expires.

    Args:
        attempts: attempts made so far, including the one that just failed.
        now: the current time.
        received_at: when the message was accepted.
        intervals: the back-off intervals (``relay.retry_intervals``), at least one.
        lifetime: the maximum queue lifetime (``relay.max_queue_lifetime``).
        hint: a delay asked for by the remote server (:func:`retry_hint`).

    Returns:
        The time of the next attempt, or ``None`` when the recipient should expire.

    Raises:
        ValueError: if ``intervals`` is empty.
    """
    if not intervals:
        msg = "at least one retry interval is needed"
        raise ValueError(msg)
    deadline = received_at + lifetime
    if now >= deadline:
        return None
    delay = intervals[min(max(attempts, 1), len(intervals)) - 1]
    if hint is not None:
        delay = min(max(hint, intervals[0]), MAX_HINT)
    return min(now + delay, deadline)


def should_expire(
    now: datetime,
    received_at: datetime,
    first_attempt_at: datetime | None,
    attempts: int,
    lifetime: timedelta,
    *,
    last_attempt_at: datetime | None = None,
) -> bool:
    """Whether a queued or deferred recipient should expire now.

    Only once the deadline ``received_at + lifetime`` has passed *and* the recipient has
    been tried: a forward clock jump, or a gateway that was down past the deadline, must
    not expire mail that was never attempted (``attempts == 0`` or no
    ``first_attempt_at``). When ``last_attempt_at`` is known, the last attempt must also
    have been at or after the deadline, so a recipient whose final retry was scheduled on
    the deadline (:func:`next_attempt`) gets that attempt before it expires.

    Args:
        now: the current time.
        received_at: when the message was accepted.
        first_attempt_at: when the recipient was first tried, if ever.
        attempts: attempts made so far.
        lifetime: the maximum queue lifetime.
        last_attempt_at: when the recipient was last tried, if the caller knows.

    Returns:
        ``True`` to expire the recipient.
    """
    deadline = received_at + lifetime
    if attempts <= 0 or first_attempt_at is None or now < deadline:
        return False
    return last_attempt_at is None or last_attempt_at >= deadline
