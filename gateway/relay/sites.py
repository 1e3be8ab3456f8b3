"""Ready queues per site: which transaction the relay may start next, and which must wait.

A site is the set of MX hosts of a destination domain (``core.routing.site_of``): every
domain that Google Workspace or Microsoft 365 hosts shares one, so their limits are shared.

Owns: a bounded ready queue per site and in all (jobs beyond them stay in the store), the
round-robin choice among sites that have room, each site's limits in force (its provider's
shaping, throttled by ``core.shaping.SiteHealth``), the spacing of transactions
(``messages_per_second``), the growth of a site's concurrency (``connection_rate``: a new
session costs a token; one that reuses a session idle for less than ``idle_timeout`` does
not), and forgetting sites that have been idle and healthy for a while, so the table holds
only sites in use. Does not own: claiming, sending or recording (``relay.worker``), or
the health rules (``core.shaping``).

Pure bookkeeping: no I/O, the time is passed in.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from gateway.core.shaping import Change, Provider, Shaping, SiteHealth, SiteState, SiteView

J = TypeVar("J")

FORGET_AFTER = timedelta(minutes=10)  # an idle, healthy site is forgotten after this
_RATE_SAMPLES = 1000  # transactions remembered per site to estimate how fast it drains
_RATE_WINDOW = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Waiting(Generic[J]):
    job: J
    recipients: int
    since: datetime


@dataclass(eq=False)
class Site(Generic[J]):
    """One destination site and its ready queue."""

    key: str
    provider: Provider
    health: SiteHealth
    ready: deque[Waiting[J]] = field(default_factory=deque)
    waiting: int = 0  # recipients in ``ready``
    active: int = 0  # transactions running
    tokens: float = 0.0  # new sessions that may be opened now
    refilled: datetime | None = None
    idle: deque[datetime] = field(default_factory=deque)  # sessions left idle, by when
    next_start: datetime | None = None
    last_used: datetime | None = None
    finished: deque[datetime] = field(default_factory=lambda: deque(maxlen=_RATE_SAMPLES))

    @property
    def full(self) -> bool:
        return self.waiting >= self.health.limits.ready_queue


class Sites(Generic[J]):
    """The ready queues (see the module docstring).

    Args:
        shaping: the shaping table.
        capacity: recipients waiting in memory across all sites.
        idle_timeout: how long a session is kept idle for reuse (``relay.idle_timeout``).
        share: how many processes send with these limits; each takes its part (at least
            one connection), so together they never exceed a site's limit.
    """

    def __init__(
        self,
        shaping: Shaping,
        capacity: int,
        idle_timeout: timedelta = timedelta(seconds=10),
        share: int = 1,
    ) -> None:
        self.shaping = shaping
        self.capacity = capacity
        self.idle_timeout = idle_timeout
        self.share = max(1, share)
        self._sites: dict[str, Site[J]] = {}
        self._turn: deque[str] = deque()  # sites with ready jobs, in round-robin order
        self.waiting = 0

    def __len__(self) -> int:
        return len(self._sites)

    def __iter__(self) -> Iterator[Site[J]]:
        return iter(list(self._sites.values()))

    def room(self) -> int:
        """Recipients that may still be claimed into memory."""
        return max(0, self.capacity - self.waiting)

    def site(self, key: str, provider: str) -> Site[J]:
        """The site ``key``, created with ``provider``'s shaping when new."""
        found = self._sites.get(key)
        if found is None:
            shaped = self._shared(self.shaping.for_provider(provider))
            found = Site(key, shaped, SiteHealth(shaped), tokens=shaped.limits.connections)
            self._sites[key] = found
        return found

    def connections(self, site: Site[J]) -> int:
        """The sessions ``site`` may have open now (its limit, throttled)."""
        return site.health.limits.connections

    def offer(self, site: Site[J], job: J, recipients: int, now: datetime) -> bool:
        """Queue ``job`` for ``site``; false when the site's or the whole ready queue is
        full (the caller leaves it in the store)."""
        if site.full or (self.waiting > 0 and self.waiting + recipients > self.capacity):
            return False
        if not site.ready:
            self._turn.append(site.key)
        site.ready.append(Waiting(job, recipients, now))
        site.waiting += recipients
        self.waiting += recipients
        return True

    def take(self, now: datetime) -> tuple[Site[J], J] | None:
        """The next job that may start now, round-robin over the sites; ``None`` when every
        site with jobs is at its limit, suspended, or waiting for its rate."""
        for _ in range(len(self._turn)):
            key = self._turn[0]
            self._turn.rotate(-1)
            site = self._sites.get(key)
            if site is None or not site.ready:
                self._drop_turn(key)
                continue
            if not self._may_start(site, now):
                continue
            waiting = site.ready.popleft()
            if not site.ready:
                self._drop_turn(key)
            site.waiting -= waiting.recipients
            self.waiting -= waiting.recipients
            self._start(site, now)
            return site, waiting.job
        return None

    def done(self, site: Site[J], now: datetime, *, session_kept: bool) -> None:
        """A transaction of ``site`` ended; ``session_kept``: its session stays open idle."""
        site.active -= 1
        site.last_used = now
        site.finished.append(now)
        if session_kept:
            site.idle.append(now)

    def drain_time(self, site: Site[J], now: datetime) -> timedelta:
        """How long ``site``'s waiting recipients will take at the pace of its last
        transactions, at least a second and at most a minute: when a job that found the
        queue full is worth claiming again. A site with no transaction in the last ten
        seconds (just started, or stuck) gets a second: guessing slow would hold fast mail
        back for a minute, and a stuck site's jobs are taken care of by its health."""
        recent = [at for at in site.finished if now - at <= _RATE_WINDOW]
        if not recent:
            return timedelta(seconds=1)
        # Over the time the samples cover (a site busy for 2 s has 2 s of history, not 10).
        span = max(1.0, (now - recent[0]).total_seconds())
        pace = len(recent) / span
        return timedelta(seconds=min(60.0, max(1.0, site.waiting / pace)))

    def drain(self, site: Site[J]) -> list[J]:
        """Every job waiting for ``site`` (a suspended site's recipients are deferred)."""
        jobs = [w.job for w in site.ready]
        self.waiting -= site.waiting
        site.ready.clear()
        site.waiting = 0
        self._drop_turn(site.key)
        return jobs

    def stale(self, now: datetime, longest: timedelta) -> list[J]:
        """Jobs that have waited longer than ``longest`` (their leases would run out): taken
        out, for the caller to give back to the store."""
        out: list[J] = []
        for site in self._sites.values():
            while site.ready and now - site.ready[0].since > longest:
                waiting = site.ready.popleft()
                site.waiting -= waiting.recipients
                self.waiting -= waiting.recipients
                out.append(waiting.job)
            if not site.ready:
                self._drop_turn(site.key)
        return out

    def tick(self, now: datetime) -> list[tuple[Site[J], Change]]:
        """Let time pass for every site (suspensions ending, throttles recovering) and
        forget the idle, healthy ones."""
        changes: list[tuple[Site[J], Change]] = []
        for site in list(self._sites.values()):
            change = site.health.tick(now)
            if change is not None:
                changes.append((site, change))
            if self._forgettable(site, now):
                del self._sites[site.key]
        return changes

    def next_wake(self, now: datetime) -> datetime | None:
        """When a site that is waiting for time (its rate, a token, the end of a suspension
        or of a throttle step) may move next; ``None`` when none is."""
        times: list[datetime] = []
        for site in self._sites.values():
            health = site.health
            if health.state is SiteState.SUSPENDED and health.until is not None:
                times.append(health.until)
            if health.recover_at is not None:
                times.append(health.recover_at)
            if site.ready and site.next_start is not None and site.next_start > now:
                times.append(site.next_start)
            if site.ready and site.tokens < 1 and health.may_open(site.active):
                rate = health.limits.connection_rate / 60.0
                times.append(now + timedelta(seconds=(1 - site.tokens) / rate))
        return min(times, default=None)

    def views(self) -> list[SiteView]:
        return [
            SiteView(
                site.key,
                site.provider.name,
                site.health.state,
                site.health.since,
                site.health.until,
                site.waiting,
                site.active,
                site.health.limits.connections,
                site.health.throttle_steps > 0,
                site.health.last_error,
            )
            for site in self._sites.values()
        ]

    # --- inside ---------------------------------------------------------------------------

    def _shared(self, provider: Provider) -> Provider:
        if self.share == 1:
            return provider
        limits = provider.limits
        part = dataclasses.replace(
            limits,
            connections=max(1, limits.connections // self.share),
            initial_connections=max(1, limits.initial_connections // self.share),
            connection_rate=max(1.0, limits.connection_rate / self.share),
            messages_per_second=limits.messages_per_second / self.share,
            ready_queue=max(1, limits.ready_queue // self.share),
        )
        return Provider(
            provider.name,
            part,
            provider.responses,
            provider.suspend_after,
            provider.suspend_first,
            provider.suspend_max,
        )

    def _may_start(self, site: Site[J], now: datetime) -> bool:
        health = site.health
        if not health.may_open(site.active):
            return False
        if site.next_start is not None and now < site.next_start:
            return False
        self._expire_idle(site, now)
        if site.idle:
            return True  # reuses a session: no new connection
        self._refill(site, now)
        return site.tokens >= 1

    def _start(self, site: Site[J], now: datetime) -> None:
        site.active += 1
        site.last_used = now
        if site.idle:
            site.idle.pop()
        else:
            site.tokens -= 1
        rate = site.health.limits.messages_per_second
        if rate > 0:
            base = site.next_start if site.next_start and site.next_start > now else now
            site.next_start = base + timedelta(seconds=1.0 / rate)

    def _refill(self, site: Site[J], now: datetime) -> None:
        limits = site.health.limits
        if site.refilled is not None:
            elapsed = (now - site.refilled).total_seconds()
            site.tokens = min(
                float(limits.connections), site.tokens + elapsed * limits.connection_rate / 60.0
            )
        site.refilled = now

    def _expire_idle(self, site: Site[J], now: datetime) -> None:
        while site.idle and now - site.idle[0] >= self.idle_timeout:
            site.idle.popleft()

    def _drop_turn(self, key: str) -> None:
        with contextlib.suppress(ValueError):
            self._turn.remove(key)

    def _forgettable(self, site: Site[J], now: datetime) -> bool:
        health = site.health
        return (
            not site.ready
            and site.active == 0
            and health.state is SiteState.ACTIVE
            and health.failures == 0
            and health.throttle_steps == 0
            and (site.last_used is None or now - site.last_used >= FORGET_AFTER)
        )
