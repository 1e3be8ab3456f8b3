"""Shaping as data (issue 11, item 3): the shipped table, an operator's file laid over it,
the automatic responses to replies as a table, and the health state machine of a site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.core.errors import ConfigError
from gateway.core.routing import provider_of
from gateway.core.shaping import (
    DEFAULT,
    Action,
    ChangeKind,
    Limits,
    Provider,
    Response,
    SiteHealth,
    SiteState,
    load_shaping,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SHIPPED = load_shaping()


def test_every_provider_the_routing_names_has_its_own_shaping() -> None:
    hosts = [
        "gmail-smtp-in.l.google.com",
        "x.mail.protection.outlook.com",
        "mta5.am0.yahoodns.net",
        "mx.uol.com.br",
        "mx.terra.com.br",
    ]
    for host in hosts:
        assert provider_of(host) in SHIPPED.providers
    assert SHIPPED.for_provider("other").name == DEFAULT
    assert (
        SHIPPED.for_provider("uol").limits.connections
        < SHIPPED.for_provider("gmail").limits.connections
    )


@pytest.mark.parametrize(
    ("provider", "code", "status", "text", "expected"),
    [
        (
            "other",
            421,
            "4.7.0",
            "Too many connections from your IP",
            (Action.THROTTLE, "too many connections"),
        ),
        (
            "other",
            421,
            None,
            "Service not available, closing channel",
            (Action.THROTTLE, "too many connections"),
        ),
        (
            "other",
            450,
            "4.7.1",
            "Rate limit exceeded, slow down",
            (Action.THROTTLE, "too many connections"),
        ),
        (
            "gmail",
            421,
            "4.7.28",
            "Our system has detected an unusual rate of unsolicited mail",
            (Action.THROTTLE, "gmail rate limited"),
        ),
        (
            "gmail",
            421,
            "4.7.0",
            "Try again later, closing connection.",
            (Action.THROTTLE, "gmail rate limited"),
        ),
        (
            "outlook",
            451,
            "4.7.500",
            "Server busy. Please try again later",
            (Action.THROTTLE, "outlook busy"),
        ),
        (
            "outlook",
            550,
            "5.7.1",
            "Service unavailable; Client host has been temporarily blocked (S3150)",
            (Action.SUSPEND, "outlook temporary block"),
        ),
        (
            "yahoo",
            421,
            "4.7.0",
            "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume"
            " or user complaints",
            (Action.SUSPEND, "yahoo deferral (TSS04)"),
        ),
        (
            "uol",
            450,
            None,
            "Muitas conexoes simultaneas, tente novamente mais tarde",
            (Action.THROTTLE, "uol tarpit"),
        ),
        # Replies about one recipient or one message never reshape a site.
        ("other", 451, "4.7.1", "Greylisted, please try again in 5 minutes", None),
        ("other", 550, "5.1.1", "User unknown", None),
        ("other", 452, "4.2.2", "Mailbox full", None),
        ("gmail", 550, "5.7.26", "Unauthenticated email is not accepted", None),
        ("yahoo", 554, "5.7.9", "Message not accepted for policy reasons", None),
    ],
)
def test_the_automatic_responses(
    provider: str, code: int, status: str | None, text: str, expected: tuple[Action, str] | None
) -> None:
    response = SHIPPED.for_provider(provider).response_to(code, status, text)
    assert (None if response is None else (response.action, response.name)) == expected


def _health(suspend_after: int = 3, **limits: int) -> SiteHealth:
    """A site's health; it starts with all its ``connections`` unless the test says
    otherwise (slow start has its own test)."""
    throttle = Response("busy", Action.THROTTLE, timedelta(minutes=10), codes=("421",))
    block = Response("blocked", Action.SUSPEND, timedelta(minutes=30), phrases=("blocked",))
    limits.setdefault("initial_connections", limits.get("connections", 10))
    return SiteHealth(Provider("p", Limits(**limits), (block, throttle), suspend_after))


def test_failures_in_a_row_suspend_and_each_failed_probe_doubles_the_wait_up_to_the_max() -> None:
    health = _health(connections=10)
    assert health.connection_failed(T0, "refused") is None
    assert health.connection_failed(T0, "refused") is None
    change = health.connection_failed(T0, "Connection refused")
    assert change is not None
    assert change.kind is ChangeKind.SUSPENDED
    assert (health.state, health.until, health.since) == (
        SiteState.SUSPENDED,
        T0 + timedelta(minutes=1),
        T0,
    )
    assert not health.may_open(0)
    assert health.tick(T0 + timedelta(seconds=59)) is None
    now = T0 + timedelta(minutes=1)
    waits = []
    for _ in range(10):
        probing = health.tick(now)
        assert probing is not None
        assert probing.kind is ChangeKind.PROBING
        assert health.may_open(0)
        assert not health.may_open(1)
        again = health.connection_failed(now, "timed out waiting for the greeting")
        assert again is not None
        assert again.until is not None
        waits.append(again.until - now)
        now = again.until
    assert waits[:3] == [timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8)]
    assert waits[-1] == timedelta(hours=1)
    assert health.since == T0  # unreachable since the first failure
    assert health.tick(now) is not None
    resumed = health.connected(now)
    assert resumed is not None
    assert resumed.kind is ChangeKind.RESUMED
    assert (health.state, health.since, health.failures) == (SiteState.ACTIVE, None, 0)
    assert health.may_open(9)
    assert not health.may_open(10)


def test_each_failure_in_a_row_halves_the_sessions_allowed() -> None:
    health = _health(connections=8, suspend_after=5)
    assert health.may_open(7)
    health.connection_failed(T0, "refused")
    assert health.may_open(3)
    assert not health.may_open(4)
    health.connection_failed(T0, "refused")
    assert not health.may_open(2)
    for _ in range(2):
        health.connection_failed(T0, "refused")
    assert health.may_open(0)  # never below one
    assert not health.may_open(1)
    health.connected(T0)
    assert health.may_open(7)


def test_a_site_starts_with_a_few_sessions_and_each_that_sets_up_allows_one_more() -> None:
    health = _health(connections=8, initial_connections=3)
    assert health.may_open(2)
    assert not health.may_open(3)  # a tarpit would never get more than these three
    for _ in range(3):
        health.connected(T0)
    assert health.may_open(5)
    assert not health.may_open(6)
    for _ in range(10):
        health.connected(T0)
    assert health.may_open(7)
    assert not health.may_open(8)  # never past the limit


def test_a_connection_that_works_forgets_earlier_failures() -> None:
    health = _health()
    health.connection_failed(T0, "refused")
    health.connection_failed(T0, "refused")
    assert health.connected(T0) is None  # no change to report: it was active
    health.connection_failed(T0, "refused")
    health.connection_failed(T0, "refused")
    assert health.state is SiteState.ACTIVE


def test_throttling_halves_per_step_and_recovers_a_step_per_duration() -> None:
    health = _health(connections=10, messages_per_second=0)
    first = health.replied(T0, 421, "4.7.0", "Too many connections")
    assert first is not None
    assert first.kind is ChangeKind.THROTTLED
    assert first.response == "busy"
    assert first.cause == "421 4.7.0 Too many connections"
    assert health.limits.connections == 5
    assert health.limits.messages_per_second == 5.0  # no limit before: one per connection now
    assert not health.may_open(5)
    health.replied(T0 + timedelta(minutes=1), 421, None, "busy")
    assert health.limits.connections == 2
    assert health.tick(T0 + timedelta(minutes=10)) is None  # the second reply restarted the wait
    step = health.tick(T0 + timedelta(minutes=11))
    assert step is not None
    assert step.kind is ChangeKind.RECOVERED
    assert health.limits.connections == 5
    assert health.tick(T0 + timedelta(minutes=21)) is not None
    assert health.limits == Limits(connections=10, messages_per_second=0, initial_connections=10)
    assert health.tick(T0 + timedelta(hours=5)) is None


def test_throttling_never_goes_below_one_connection() -> None:
    health = _health(connections=3)
    for _ in range(10):
        health.replied(T0, 421, None, "slow down")
    assert health.limits.connections == 1
    assert health.may_open(0)


def test_a_suspending_reply_suspends_for_its_duration_then_probes() -> None:
    health = _health()
    change = health.replied(T0, 554, "5.7.1", "Your IP is temporarily blocked")
    assert change is not None
    assert change.kind is ChangeKind.SUSPENDED
    assert change.until == T0 + timedelta(minutes=30)
    assert change.response == "blocked"
    assert health.replied(T0, 250, None, "OK") is None
    probing = health.tick(T0 + timedelta(minutes=30))
    assert probing is not None
    assert probing.kind is ChangeKind.PROBING


def test_an_operators_file_is_laid_over_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "shaping.toml"
    path.write_text(
        "[gmail]\nconnections = 4\n"
        '[[gmail.response]]\nname = "ours"\naction = "suspend"\nduration = "2h"\n'
        'phrases = ["go away"]\n'
        "[acme]\nconnections = 1\n"
    )
    shaping = load_shaping(path)
    gmail = shaping.for_provider("gmail")
    assert gmail.limits.connections == 4
    assert (
        gmail.limits.messages_per_connection
        == SHIPPED.for_provider("gmail").limits.messages_per_connection
    )
    assert gmail.responses[0].name == "ours"  # the operator's responses first
    assert [r.name for r in gmail.responses[1:]] == [
        r.name for r in SHIPPED.for_provider("gmail").responses
    ]
    assert shaping.for_provider("acme").limits.connections == 1


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[gmail]\nconections = 4\n", "gmail.conections"),
        ("[gmail]\nconnections = 0\n", "gmail.connections"),
        ("[gmail]\nconnections = 2.5\n", "gmail.connections"),
        ("[gmail]\nmessages_per_second = -1\n", "gmail.messages_per_second"),
        ('[gmail]\nsuspend_first = "2h"\nsuspend_max = "1h"\n', "gmail.suspend_max"),
        (
            '[[gmail.response]]\naction = "pause"\nduration = "1m"\nphrases = ["x"]\n',
            "gmail.response[0].action",
        ),
        (
            '[[gmail.response]]\naction = "throttle"\nduration = "soon"\nphrases = ["x"]\n',
            "gmail.response[0].duration",
        ),
        ('[[gmail.response]]\naction = "throttle"\nduration = "1m"\n', "gmail.response[0]"),
        ("gmail = 3\n", "gmail"),
    ],
)
def test_a_bad_operators_file_stops_start_up_naming_the_setting(
    tmp_path: Path, text: str, key: str
) -> None:
    path = tmp_path / "shaping.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_shaping(path)
    assert caught.value.key == f"relay.shaping ({path}): {key}"


def test_an_unreadable_operators_file_names_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_shaping(tmp_path / "missing.toml")
    assert caught.value.key == "relay.shaping"
