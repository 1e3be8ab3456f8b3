"""Retry scheduling: back-off, hints, the deadline, and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.schedule import MAX_HINT, next_attempt, retry_hint, should_expire

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
INTERVALS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 240))
LIFETIME = timedelta(days=5)
DEADLINE = T0 + LIFETIME


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [
        (0, minutes(1)),  # deferred before any attempt (e.g. DNS trouble): first interval
        (1, minutes(1)),
        (2, minutes(5)),
        (3, minutes(15)),
        (7, minutes(240)),
        (8, minutes(240)),  # the last interval repeats
        (500, minutes(240)),
    ],
)
def test_back_off(attempts: int, delay: timedelta) -> None:
    now = T0 + timedelta(hours=1)
    assert next_attempt(attempts, now, T0, INTERVALS, LIFETIME) == now + delay


@pytest.mark.parametrize(
    ("attempts", "hint", "delay"),
    [
        (1, minutes(5), minutes(5)),  # a greylisting hint lengthens the first retry
        (5, minutes(5), minutes(5)),  # and replaces a longer back-off for this retry
        (1, timedelta(seconds=10), minutes(1)),  # bounded below by the first interval
        (1, timedelta(days=3), MAX_HINT),  # bounded above by a day
        (1, timedelta(0), minutes(1)),
    ],
)
def test_hint(attempts: int, hint: timedelta, delay: timedelta) -> None:
    now = T0 + timedelta(hours=1)
    assert next_attempt(attempts, now, T0, INTERVALS, LIFETIME, hint) == now + delay


def test_the_final_attempt_lands_on_the_deadline() -> None:
    now = DEADLINE - minutes(30)
    assert next_attempt(7, now, T0, INTERVALS, LIFETIME) == DEADLINE
    assert next_attempt(1, DEADLINE - timedelta(seconds=1), T0, INTERVALS, LIFETIME) == DEADLINE


def test_a_long_hint_never_passes_the_deadline() -> None:
    now = DEADLINE - timedelta(hours=2)
    assert next_attempt(1, now, T0, INTERVALS, LIFETIME, timedelta(hours=12)) == DEADLINE


@pytest.mark.parametrize("now", [DEADLINE, DEADLINE + timedelta(seconds=1), DEADLINE + LIFETIME])
def test_a_deferral_at_or_after_the_deadline_expires(now: datetime) -> None:
    assert next_attempt(3, now, T0, INTERVALS, LIFETIME) is None


def test_a_whole_schedule_ends_on_the_deadline() -> None:
    now, attempts = T0, 0
    while True:
        attempts += 1
        due = next_attempt(attempts, now, T0, INTERVALS, LIFETIME)
        if due is None:
            break
        assert now < due <= DEADLINE
        now = due
    assert now == DEADLINE
    assert 30 < attempts < 50  # RFC 5321 §4.5.4.1: at least 30 minutes apart after a while


def test_intervals_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="interval"):
        next_attempt(1, T0, T0, (), LIFETIME)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("try again in 5 minutes", minutes(5)),
        ("4.7.1 Try again in 5 minutes", minutes(5)),
        ("retry in 300 seconds", timedelta(seconds=300)),
        ("Please try again later (retry after 10 min)", minutes(10)),
        ("Greylisted for 60 seconds", timedelta(seconds=60)),
        ("4.2.0 Greylisted, see http://postgrey.schweikert.ch/help/x.html", None),
        ("greylisting in action, please come back in 297s? retry in 297s", timedelta(seconds=297)),
        ("You are greylisted. Please retry in 5m", minutes(5)),
        ("Temporary failure, please wait 2 hours", timedelta(hours=2)),
        ("Tente novamente em 5 minutos", minutes(5)),
        ("tente de novo em 30 segundos", timedelta(seconds=30)),
        ("Aguarde 1 hora e tente novamente", timedelta(hours=1)),
        ("RETRY IN 2 MIN", minutes(2)),
        ("retry in 99999999 hours", timedelta(days=30)),  # capped, never an overflow
        # not hints
        ("try again later", None),
        ("Try again later. 4.7.0 [TSS04] deferred", None),
        ("550 5.1.1 user unknown", None),
        ("retry in 4.7.1", None),
        ("try again in a few minutes", None),
        ("retry in 5 messages", None),
        ("421 too many connections from 10 hosts", None),
        ("", None),
    ],
)
def test_retry_hint(text: str, hint: timedelta | None) -> None:
    assert retry_hint(text) == hint


@pytest.mark.parametrize(
    ("now", "first", "attempts", "last", "expire"),
    [
        (DEADLINE - minutes(1), T0, 5, None, False),  # before the deadline
        (DEADLINE, T0, 5, None, True),
        (DEADLINE + timedelta(days=9), T0, 5, None, True),
        # a forward clock jump must not expire mail that was never attempted
        (DEADLINE + timedelta(days=9), None, 0, None, False),
        (DEADLINE + timedelta(days=9), T0, 0, None, False),
        (DEADLINE + timedelta(days=9), None, 3, None, False),
        # the final attempt on the deadline comes first when the caller knows the last one
        (DEADLINE + minutes(1), T0, 5, DEADLINE - minutes(30), False),
        (DEADLINE + minutes(1), T0, 6, DEADLINE, True),
    ],
)
def test_should_expire(
    now: datetime, first: datetime | None, attempts: int, last: datetime | None, expire: bool
) -> None:
    assert should_expire(now, T0, first, attempts, LIFETIME, last_attempt_at=last) is expire
