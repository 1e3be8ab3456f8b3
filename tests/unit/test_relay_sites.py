"""Ready queues per site (issue 11, item 1): a site at its limit, suspended or waiting for
its rate never holds up another; memory is bounded; idle sites are forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.shaping import DEFAULT, Limits, Provider, Shaping
from gateway.relay.sites import FORGET_AFTER, Sites

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _sites(capacity: int = 1000, share: int = 1, **limits: float) -> Sites[str]:
    provider = Provider(DEFAULT, Limits(**limits), ())  # type: ignore[arg-type]  # ints and floats
    return Sites(Shaping({DEFAULT: provider}), capacity, timedelta(seconds=10), share)


def test_a_site_at_its_limit_does_not_hold_up_the_others() -> None:
    sites = _sites(connections=2)
    slow, fast = sites.site("mx.slow", "other"), sites.site("mx.fast", "other")
    for n in range(5):
        assert sites.offer(slow, f"slow{n}", 1, T0)
    assert sites.offer(fast, "fast0", 1, T0)
    taken = [sites.take(T0) for _ in range(4)]
    assert [t[1] for t in taken if t] == ["slow0", "fast0", "slow1"]
    assert taken[3] is None  # slow is at 2 running, fast has nothing left
    assert (slow.active, fast.active, slow.waiting) == (2, 1, 3)
    sites.done(slow, T0, session_kept=True)
    again = sites.take(T0)
    assert again is not None
    assert again[1] == "slow2"


def test_a_suspended_site_starts_nothing_and_gives_its_jobs_back() -> None:
    sites = _sites(connections=5)
    dead, alive = sites.site("mx.dead", "other"), sites.site("mx.alive", "other")
    for _ in range(3):
        dead.health.connection_failed(T0, "Connection refused")
    sites.offer(dead, "d1", 2, T0)
    sites.offer(dead, "d2", 3, T0)
    sites.offer(alive, "a1", 1, T0)
    taken = sites.take(T0)
    assert taken is not None
    assert taken[1] == "a1"
    assert sites.take(T0) is None
    assert sites.drain(dead) == ["d1", "d2"]
    assert (sites.waiting, dead.waiting) == (0, 0)


def test_memory_is_bounded_per_site_and_in_all() -> None:
    sites = _sites(capacity=10, ready_queue=6)
    a, b = sites.site("a", "other"), sites.site("b", "other")
    assert sites.offer(a, "a1", 4, T0)
    assert sites.offer(a, "a2", 4, T0)
    assert not sites.offer(a, "a3", 1, T0)  # a holds 8 >= its 6
    assert not sites.offer(b, "b1", 4, T0)  # 12 > 10 in all
    assert sites.offer(b, "b2", 2, T0)
    assert sites.room() == 0
    # One job larger than the whole capacity still gets in when nothing waits.
    empty = _sites(capacity=10)
    assert empty.offer(empty.site("c", "other"), "big", 50, T0)


def test_messages_per_second_spaces_the_starts() -> None:
    sites = _sites(connections=10, messages_per_second=2)
    site = sites.site("mx", "other")
    for n in range(3):
        sites.offer(site, f"m{n}", 1, T0)
    assert sites.take(T0) is not None
    assert sites.take(T0) is None
    assert sites.next_wake(T0) == T0 + timedelta(seconds=0.5)
    assert sites.take(T0 + timedelta(seconds=0.5)) is not None


def test_new_sessions_cost_tokens_and_reused_ones_do_not() -> None:
    sites = _sites(connections=3, connection_rate=60)
    site = sites.site("mx", "other")
    for n in range(10):
        sites.offer(site, f"m{n}", 1, T0)
    started = [sites.take(T0) for _ in range(3)]
    assert all(started)  # the burst: up to the limit at once
    for _ in range(3):
        sites.done(site, T0, session_kept=False)  # sessions closed
    assert sites.take(T0) is None  # no token left for a new session
    assert sites.next_wake(T0) == T0 + timedelta(seconds=1)
    assert sites.take(T0 + timedelta(seconds=1)) is not None  # one token a second
    sites.done(site, T0 + timedelta(seconds=1), session_kept=True)
    assert sites.take(T0 + timedelta(seconds=1)) is not None  # reuses the idle session
    sites.done(site, T0 + timedelta(seconds=2), session_kept=True)
    # Idle for 11 s: that session is gone; 12 s refilled the tokens to the limit.
    later = T0 + timedelta(seconds=13)
    assert [sites.take(later) is not None for _ in range(4)] == [True, True, True, False]
    assert site.active == 3


def test_idle_healthy_sites_are_forgotten_and_troubled_ones_kept() -> None:
    sites = _sites()
    for n in range(100):
        site = sites.site(f"mx{n}", "other")
        sites.offer(site, "job", 1, T0)
        assert sites.take(T0) is not None
        sites.done(site, T0, session_kept=False)
    troubled = sites.site("mx.troubled", "other")
    for _ in range(3):
        troubled.health.connection_failed(T0, "refused")
    sites.tick(T0 + FORGET_AFTER - timedelta(seconds=1))
    assert len(sites) == 101
    sites.tick(T0 + FORGET_AFTER)
    assert [s.key for s in sites] == ["mx.troubled"]


def test_processes_sharing_the_limits_each_take_their_part() -> None:
    sites = _sites(share=4, connections=10, messages_per_second=8, ready_queue=100)
    limits = sites.site("mx", "other").health.limits
    assert (limits.connections, limits.messages_per_second, limits.ready_queue) == (2, 2.0, 25)
    assert _sites(share=4, connections=2).site("mx", "other").health.limits.connections == 1


def test_jobs_that_waited_too_long_are_given_back() -> None:
    sites = _sites(connections=1)
    site = sites.site("mx", "other")
    sites.offer(site, "old", 1, T0)
    sites.offer(site, "new", 1, T0 + timedelta(minutes=10))
    assert sites.stale(T0 + timedelta(minutes=15), timedelta(minutes=10)) == ["old"]
    assert sites.waiting == 1
    taken = sites.take(T0 + timedelta(minutes=15))
    assert taken is not None
    assert taken[1] == "new"


def test_the_views_show_state_queue_and_error() -> None:
    sites = _sites(connections=4)
    site = sites.site("mx1.example,mx2.example", "other")
    sites.offer(site, "j", 7, T0)
    for _ in range(3):
        site.health.connection_failed(T0, "Timed out waiting for the greeting")
    (view,) = sites.views()
    assert (view.site, view.state, view.queued, view.since) == (
        "mx1.example,mx2.example",
        "suspended",
        7,
        T0,
    )
    assert view.until == T0 + timedelta(minutes=1)
    assert view.last_error == "Timed out waiting for the greeting"


def test_a_full_site_says_when_it_will_have_room_at_its_own_pace() -> None:
    sites = _sites(connections=10, ready_queue=100)
    site = sites.site("mx", "other")
    assert sites.drain_time(site, T0) == timedelta(seconds=1)  # nothing to go by yet
    for n in range(100):
        assert sites.offer(site, f"m{n}", 1, T0)
    for n in range(50):  # 50 transactions over the last 10 s: 5 a second
        taken = sites.take(T0)
        assert taken is not None
        sites.done(site, T0 + timedelta(seconds=5 + n * 0.2), session_kept=True)
    later = T0 + timedelta(seconds=15)
    assert sites.drain_time(site, later) == timedelta(seconds=10)  # 50 waiting at 5/s
    # Nothing finished for 10 s: no pace to go by, look again in a second.
    assert sites.drain_time(site, later + timedelta(seconds=30)) == timedelta(seconds=1)


def test_a_site_busy_for_two_seconds_is_paced_over_those_two_seconds() -> None:
    sites = _sites(connections=10, ready_queue=1000)
    site = sites.site("mx", "other")
    for n in range(400):
        sites.offer(site, f"m{n}", 1, T0)
    for n in range(200):  # 200 transactions in 2 s: 100 a second, not 20
        assert sites.take(T0) is not None
        sites.done(site, T0 + timedelta(seconds=n / 100), session_kept=True)
    assert sites.drain_time(site, T0 + timedelta(seconds=2)) == timedelta(seconds=2)

