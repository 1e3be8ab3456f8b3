"""The relay: claim due recipients, queue them per site, start what each site has room for,
record what happened.

Owns: the scheduling loop (woken at once by the intake or a finished attempt, otherwise
sleeping until the next due time, the next rate slot or the end of a suspension), claiming
by whole messages with their content (one store round trip), grouping claimed recipients
into one transaction per message and destination, the ready queue per site
(``relay.sites``: a site at its limit, suspended or tarpitting holds only its own
recipients, never a slot another site could use), each site's health (``core.shaping``:
connection failures in a row suspend it, its recipients are deferred without connecting,
one probe resumes it; replies such as ``421 Too many connections`` throttle it), and the
global cap ``relay.concurrency`` on transactions running at once.
Does not own: routing and the SMTP attempt (``relay.attempt``, ``relay.client``), writing
outcomes down (``relay.recording``), classification (``bounce``), retry arithmetic
(``core.schedule``/``core.lifecycle``) or the auto-block policy (``services.outcomes``).

Waiting is never an outcome: a job waits in its site's queue (or, when that is full, in the
store) and nothing is recorded for it until it is tried, or its site is suspended; a job of a
tenant paused meanwhile goes back to the store untried (``relay.paused``). Claims are leases
(``relay.lease``): a recipient claimed by a process that dies becomes due again when the lease
runs out, and at start-up a node releases its own previous leases. A job that waited half a
lease in memory goes back to the store. Suppressions are checked again before each attempt,
for the whole claimed batch in one query: a recipient whose address was suppressed after it
was queued (by an admin, a complaint, another message's hard bounce; in clear or, for an
erased address, hashed) is not sent. It ends ``suppressed``, with the suppression's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from gateway.core import replies, verp
from gateway.core.errors import Phase, RelayError, StoreError
from gateway.core.lifecycle import Result, Suppressed, effect
from gateway.core.model import Delivery, Event, Status
from gateway.core.ports import Outcome
from gateway.core.shaping import Change, ChangeKind, Shaping, SiteState, load_shaping
from gateway.core.streams import Stream
from gateway.observe.logging import log_event
from gateway.relay.attempt import Attempt, Attempter, Route
from gateway.relay.paused import PauseGate
from gateway.relay.recording import Classifier, Job, Recorder
from gateway.relay.sites import Site, Sites

if TYPE_CHECKING:
    from gateway.config import BounceConfig, RelayConfig
    from gateway.core.ports import Clock, Resolver, Store
    from gateway.relay.client import SmtpClient
    from gateway.relay.shaping import Shaper
    from gateway.services.holds import HoldKeeper
    from gateway.services.outcomes import BounceNotifier, PolicyApplier

log = logging.getLogger("gateway.relay")

__all__ = ["Classifier", "Job", "Relay", "Signer"]


class Signer(Protocol):
    """DKIM: ``await signer(tenant, content)`` returns the header to prepend (or ``b""``),
    signed off the event loop."""

    async def refresh(self) -> None: ...

    async def __call__(self, tenant: str, content: bytes) -> bytes: ...


_POLL = 5.0  # seconds: upper bound on sleeping, so other processes' new mail is seen
# While the store fails (disk full, locked): pause between claims instead of spinning.
_STORE_BACKOFF = 1.0

Queued = tuple[Job, Route]
SiteChanged = Callable[[str, Change], None]


class Relay:
    """Delivers queued recipients (see the module docstring).

    Args:
        config: the ``[relay]`` section.
        bounce: the ``[bounce]`` section (return-path domain and key).
        store: the queue.
        resolver: DNS.
        client: the SMTP client (connection pool).
        clock: time source.
        policy: applied after each final outcome.
        classify: the bounce classifier for synchronous replies.
        node_id: this process's lease owner name.
        local_names: our own host names; an MX naming one is a mail loop.
        signer: DKIM signing, per tenant.
        shaper: per-tenant List-Unsubscribe headers (one transaction per recipient then).
        notifier: queues a bounce notice to the sender for tenants that want one.
        local_endpoints: our SMTP listeners' ``(address, port)`` pairs, read at each
            attempt; an MX address and ``relay.mx_port`` equal to one of them is a loop.
        shaping: the shaping table (the shipped one when ``None``).
        share: processes sending with these limits (each takes its part).
        site_changed: called with the provider and each automatic change of a site (the
            metric); every change is also logged.
    """

    def __init__(
        self,
        config: RelayConfig,
        bounce: BounceConfig,
        store: Store,
        resolver: Resolver,
        client: SmtpClient,
        clock: Clock,
        policy: PolicyApplier,
        classify: Classifier,
        node_id: str,
        local_names: Sequence[str] = (),
        signer: Signer | None = None,
        shaper: Shaper | None = None,
        notifier: BounceNotifier | None = None,
        local_endpoints: Callable[[], Iterable[tuple[str, int]]] | None = None,
        shaping: Shaping | None = None,
        share: int = 1,
        site_changed: SiteChanged | None = None,
    ) -> None:
        self.config = config
        self.bounce = bounce
        self.store = store
        self.pauses = PauseGate(store, clock)
        self.client = client
        self.clock = clock
        self.policy = policy
        self.node_id = node_id
        self.signer = signer
        self.shaper = shaper
        self.secret = bounce.secret.encode()
        self.attempter = Attempter(config, resolver, client, local_names, local_endpoints)
        self.recorder = Recorder(
            config, store, clock, policy, classify, node_id, shaper, self._back_off
        )
        self.recorder.notifier = notifier
        self.holds: HoldKeeper | None = None  # set by ``app`` (issue 15)
        self.sites: Sites[Queued] = Sites(
            shaping or load_shaping(), config.ready_queue_limit, config.idle_timeout, share
        )
        self.site_changed = site_changed
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._free = config.concurrency
        self._jobs: asyncio.TaskGroup | None = None  # while run() runs
        self.running = False
        self.in_flight = 0

    @property
    def notifier(self) -> BounceNotifier | None:
        return self.recorder.notifier

    @notifier.setter
    def notifier(self, notifier: BounceNotifier | None) -> None:
        self.recorder.notifier = notifier

    def wake(self) -> None:
        """New mail is queued: look for due work now instead of at the next timer."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; in-flight deliveries finish (``run`` returns when they have)."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until ``stop``; then wait for in-flight jobs and give the jobs
        still waiting back to the store."""
        released = await self._release_own_claims()
        if released:
            log_event(log, "relay.released_leases", count=released, node=self.node_id)
        self.running = True
        try:
            async with asyncio.TaskGroup() as jobs:
                self._jobs = jobs
                while not self._stopping.is_set():
                    await self._tick()
                    claimed = 0
                    room = self.sites.room()
                    if room > 0:
                        claim = await self._claim(min(self.config.batch_size, room))
                        if claim is None:
                            await self._back_off()
                            continue
                        deliveries, contents = claim
                        claimed = len(deliveries)
                        if deliveries:
                            await self._queue(deliveries, contents)
                    self._dispatch()
                    if not claimed:
                        await self._sleep(can_claim=room > 0)
                # Stopping: what was claimed and has room starts now, with the deliveries
                # already in flight; the rest goes back to the store when they have ended.
                self._dispatch()
                self._jobs = None
        finally:
            self.running = False
            self._jobs = None
            await self._give_back_all()
            await self.client.close()

    # --- claiming and queueing --------------------------------------------------------------

    async def _release_own_claims(self) -> int:
        """Our previous process's leases, made due now. A store that fails at start-up (locked,
        disk full) must not stop the relay, let alone the gateway: retried until it works."""
        while not self._stopping.is_set():
            try:
                return await self.store.release_claims(self.node_id)
            except StoreError as exc:
                log_event(log, "relay.release_failed", logging.ERROR, error=str(exc))
                await self._back_off()
        return 0

    async def _claim(self, limit: int) -> tuple[list[Delivery], dict[str, bytes | None]] | None:
        """Due recipients, by whole messages, with the messages' content (one store round
        trip); ``None`` when the store failed."""
        self._wake.clear()
        try:
            return await self.store.claim_due_with_content(
                self.clock.now(), limit, self.node_id, self.config.lease
            )
        except StoreError as exc:
            log_event(log, "relay.claim_failed", logging.ERROR, error=str(exc))
            return None

    async def _queue(self, claimed: list[Delivery], contents: dict[str, bytes | None]) -> None:
        """Route the claimed recipients and put each job in its site's ready queue; what
        cannot be routed is recorded at once, a suspended site's jobs are deferred, and a
        job whose site's queue is full goes back to the store."""
        claimed = await self._drop_suppressed(claimed)
        if not claimed:
            return
        split = None
        if self.shaper is not None:
            await self.shaper.refresh()
            split = self.shaper.per_recipient
        by_domain = self.config.smarthost is None
        grouped = _group(claimed, contents, by_domain=by_domain, per_recipient=split)
        domains = list(dict.fromkeys(job.domain for job in grouped))
        routes = dict(
            zip(domains, await asyncio.gather(*map(self.attempter.route, domains)), strict=True)
        )
        now = self.clock.now()
        full: list[Job] = []
        due_again = now
        unreachable: dict[str, tuple[Site[Queued], list[Job]]] = {}
        for job in grouped:
            route = routes[job.domain]
            if job.content is None:
                gone = replies.Reply(554, "5.3.0", "Message content no longer available")
                rcpts = {d.wire_address: gone for d in job.deliveries}
                await self.recorder.record(job, rcpts, Result.BOUNCED, "")
            elif isinstance(route, RelayError):
                await self._record_failure(job, route)
            else:
                site = self.sites.site(route.site, route.provider)
                if site.health.state is SiteState.SUSPENDED:
                    unreachable.setdefault(site.key, (site, []))[1].append(job)
                else:
                    for part in _split(job, site.health.limits.recipients_per_message):
                        if not self.sites.offer(site, (part, route), len(part.deliveries), now):
                            full.append(part)
                            due_again = max(due_again, now + self.sites.drain_time(site, now))
        for site, waiting in unreachable.values():
            await self._defer_unreachable(site, waiting)
        if full:
            # Due again when its site will have room, at the site's own pace.
            await self._give_back(full, due_again)

    async def _drop_suppressed(self, claimed: list[Delivery]) -> list[Delivery]:
        """The claimed recipients whose address is not suppressed; the others are recorded
        as ``suppressed`` (one query for the batch, one write when any is found).

        A store that fails the look-up leaves the batch as it was: the intake checked every
        address at ``RCPT``, and holding the batch would leave it leased for ``relay.lease``.
        """
        now = self.clock.now()
        try:
            found = await self.store.suppressions_among(
                [(d.tenant, d.address, d.stream) for d in claimed], now
            )
        except StoreError as exc:
            log_event(log, "relay.suppression_check_failed", logging.ERROR, error=str(exc))
            return claimed
        if self.holds is not None:  # a tenant that holds keeps them held (issue 15)
            claimed, found = await self.holds.hold_claimed(claimed, found, self.node_id)
        if not found:
            return claimed
        keep: list[Delivery] = []
        cancelled: list[Outcome] = []
        for delivery in claimed:
            # Only a suppression whose scope stops the message's stream (issue 15).
            suppression = found.get((delivery.tenant, delivery.address, delivery.stream))
            if suppression is None:
                keep.append(delivery)
                continue
            current = Status.DEFERRED if delivery.attempts else Status.QUEUED
            change = effect(current, Suppressed(suppression.reason))
            assert change.status is not None  # a claimed recipient is pending
            reason = suppression.reason.value
            event = Event(
                delivery.recipient_id,
                delivery.tenant,
                delivery.address,
                change.event,
                now,
                queue_id=delivery.queue_id,
                category=change.category,
                text=f"Not sent: the address was suppressed ({reason}) after it was queued",
                reason=change.reason,
                details={
                    "suppressed_since": suppression.since.isoformat(),
                    "scope": suppression.scope.value,
                    "stream": delivery.stream.value,
                },
            )
            cancelled.append(Outcome(delivery.recipient_id, change.status, event))
            log_event(
                log,
                "relay.suppressed",
                queue_id=delivery.queue_id,
                rcpt=delivery.address,
                reason=reason,
            )
        # Not recorded (the store failed): still not sent; the lease ends, the next claim checks.
        await self.recorder.record_outcomes(cancelled[0].event.queue_id or "", cancelled)
        return keep

    async def _give_back(self, jobs: list[Job], due: datetime) -> None:
        """Release ``jobs``' leases in the store, due at ``due``; nothing is recorded."""
        ids = [d.recipient_id for job in jobs for d in job.deliveries]
        try:
            await self.store.release_claims(self.node_id, ids, due)
        except StoreError as exc:  # the leases run out instead
            log_event(log, "relay.give_back_failed", logging.ERROR, error=str(exc))

    async def _give_back_all(self) -> None:
        waiting = [job for site in self.sites for job, _ in self.sites.drain(site)]
        if waiting:
            await self._give_back(waiting, self.clock.now())

    # --- dispatching ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start what the sites have room for, within ``relay.concurrency``: from the loop,
        and as soon as a job gives its site slot back (not after the loop's next claim)."""
        jobs = self._jobs
        if jobs is None:
            return
        now = self.clock.now()
        while self._free > 0:
            taken = self.sites.take(now)
            if taken is None:
                return
            site, (job, route) = taken
            self._free -= 1
            jobs.create_task(self._run_job(site, job, route))

    async def _tick(self) -> None:
        """Time passes for the sites; jobs waiting too long go back to the store."""
        now = self.clock.now()
        for site, change in self.sites.tick(now):
            self._changed(site, change)
        stale = self.sites.stale(now, self.config.lease / 2)
        if stale:
            await self._give_back([job for job, _ in stale], now)

    async def _sleep(self, *, can_claim: bool) -> None:
        """Until new mail, a finished job, the next due recipient (when there is room to
        claim it), the next time a site may move, or ``_POLL``."""
        timeout = _POLL
        now = self.clock.now()
        due = None
        if can_claim:
            with contextlib.suppress(StoreError):
                due = await self.store.next_due()
        wake = self.sites.next_wake(now)
        for at in (due, wake):
            if at is not None:
                timeout = min(timeout, max((at - now).total_seconds(), 0.0))
        if timeout <= 0:
            await asyncio.sleep(0)  # let finished jobs run their bookkeeping
            return
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _back_off(self) -> None:
        """Pause ``_STORE_BACKOFF`` seconds, or until ``stop``."""
        try:
            async with asyncio.timeout(_STORE_BACKOFF):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _run_job(self, site: Site[Queued], job: Job, route: Route) -> None:
        self.in_flight += 1
        slot = _SiteSlot(self, site)
        try:
            await self._deliver(slot, job, route)
        except Exception:
            # A bug must not take the relay down: the lease returns the work to the queue.
            log.exception("relay.job_crashed", extra={"fields": {"queue_id": job.queue_id}})
        finally:
            slot.give_back(kept=False)
            self.in_flight -= 1
            self._free += 1
            self._dispatch()
            # A retry sooner than the loop's sleep, or room another site needed: look again.
            self._wake.set()

    # --- one transaction --------------------------------------------------------------------

    async def _deliver(self, slot: _SiteSlot, job: Job, route: Route) -> None:
        """Make the attempt, give the site its slot back, record the outcome."""
        site = slot.site
        content = job.content
        assert content is not None  # a job without content is recorded when queued
        first = job.deliveries[0]
        if await self.pauses.paused(first.tenant):  # issue 15: back to the store, untried
            await self._give_back([job], self.clock.now())
            return
        if self.shaper is not None and len(job.deliveries) == 1:
            # RFC 8058: prepended before signing, so DKIM covers List-Unsubscribe(-Post).
            content = (
                self.shaper.headers_for(first.tenant, first.address, content, first.stream)
                + content
            )
        if self.signer is not None:
            await self.signer.refresh()
            # Signed once per transaction, over the bytes as stored (RFC 6376 §5).
            content = (await self.signer(first.tenant, content)) + content
        return_path = (
            verp.make_return_path(
                job.queue_id,
                [d.recipient_id for d in job.deliveries],
                self.secret,
                self.bounce.domain,
                self.clock.now(),
            )
            if first.mail_from
            else ""
        )
        rcpts = [d.wire_address for d in job.deliveries]  # RCPT TO as the client gave it
        limits = site.health.limits
        attempt = await self.attempter.attempt(
            route, return_path, rcpts, content, limits.messages_per_connection
        )
        # The site's slot covers the SMTP attempt only: recording the outcome waits for an
        # fsync, and holding the slot through it would cap each site at its connections /
        # commit time messages per second. The client has checked the session in already.
        unreachable = self._observe(site, attempt)
        slot.give_back(kept=attempt.result is not None and attempt.result.kept)
        if unreachable:
            await self._defer_unreachable(site, unreachable)
        if attempt.failure is not None:
            await self._record_failure(job, attempt.failure)
            return
        result = attempt.result
        assert result is not None
        await self.recorder.record(job, result.accepted, Result.ACCEPTED, result.host)
        await self.recorder.record(job, result.deferred, Result.DEFERRED, result.host)
        await self.recorder.record(job, result.bounced, Result.BOUNCED, result.host)

    async def _record_failure(self, job: Job, failure: RelayError) -> None:
        kind = Result.BOUNCED if failure.reply.is_permanent else Result.DEFERRED
        rcpts = {d.wire_address: failure.reply for d in job.deliveries}
        await self.recorder.record(job, rcpts, kind, failure.host, failure.phase)

    # --- site health ------------------------------------------------------------------------

    def _observe(self, site: Site[Queued], attempt: Attempt) -> list[Job]:
        """Tell the site's health what the attempt showed (before the site's slot is given
        back, so the next job starts under the limits this attempt set); a site that is now
        suspended gives back its waiting jobs, to be deferred without connecting."""
        now = self.clock.now()
        health = site.health
        change: Change | None = None
        if attempt.unreachable:
            assert attempt.failure is not None
            change = health.connection_failed(now, attempt.failure.reply.text)
        elif attempt.reached:
            change = health.connected(now)
        if change is not None:
            self._changed(site, change)
        for reply in _remote_replies(attempt):
            change = health.replied(now, reply.code, reply.enhanced or None, reply.text)
            if change is not None:
                self._changed(site, change)
                break  # one reply reshapes a site once per attempt
        if health.state is SiteState.SUSPENDED:
            return [job for job, _ in self.sites.drain(site)]
        return []

    async def _defer_unreachable(self, site: Site[Queued], jobs: list[Job]) -> None:
        """Defer a suspended site's jobs, one event per recipient saying why, without a
        connection."""
        health = site.health
        since = health.since or self.clock.now()
        until = f"; next try after {health.until:%Y-%m-%d %H:%M:%S} UTC" if health.until else ""
        text = (
            f"Destination {_short(site.key)} not reachable since "
            f"{since:%Y-%m-%d %H:%M:%S} UTC ({health.last_error}){until}"
        )
        reply = replies.Reply(451, "4.4.1", " ".join(text.split()))
        for job in jobs:
            rcpts = dict.fromkeys((d.wire_address for d in job.deliveries), reply)
            await self.recorder.record(job, rcpts, Result.DEFERRED, site.key, Phase.CONNECT)

    def _changed(self, site: Site[Queued], change: Change) -> None:
        """An automatic change of a site: logged with its cause, and counted."""
        level = logging.WARNING if change.kind is ChangeKind.SUSPENDED else logging.INFO
        log_event(
            log,
            f"relay.site_{change.kind.value}",
            level,
            site=site.key,
            provider=site.provider.name,
            cause=change.cause,
            response=change.response,
            until=change.until.isoformat() if change.until else None,
            connections=site.health.limits.connections,
        )
        if self.site_changed is not None:
            self.site_changed(site.provider.name, change)


class _SiteSlot:
    """A running job's place in its site's limit, given back once: right after the SMTP
    attempt, or when the job ends without one."""

    __slots__ = ("relay", "site", "taken")

    def __init__(self, relay: Relay, site: Site[Queued]) -> None:
        self.relay = relay
        self.site = site
        self.taken = True

    def give_back(self, *, kept: bool) -> None:
        if self.taken:
            self.taken = False
            self.relay.sites.done(self.site, self.relay.clock.now(), session_kept=kept)
            self.relay._dispatch()  # the site may start its next job now


def _remote_replies(attempt: Attempt) -> list[replies.Reply]:
    """The replies of the attempt that a remote server sent — the failure's, or the deferred
    recipients' (each text once) — for the shaping responses."""
    failure = attempt.failure
    if failure is not None:
        remote = not attempt.unreachable and failure.phase is not Phase.RESOLVE
        return [failure.reply] if remote else []
    if attempt.result is None:
        return []
    return list(dict.fromkeys(attempt.result.deferred.values()))


def _split(job: Job, most: int) -> list[Job]:
    """``job`` as transactions of at most ``most`` recipients (the site's
    ``recipients_per_message``): one message to many recipients at one site is sent in
    several transactions rather than have the rest refused with ``452`` and retried later."""
    if len(job.deliveries) <= most:
        return [job]
    return [
        replace(job, deliveries=job.deliveries[i : i + most])
        for i in range(0, len(job.deliveries), most)
    ]


def _short(site: str) -> str:
    hosts = site.split(",")
    return site if len(hosts) <= 2 else f"{hosts[0]} (+{len(hosts) - 1} more)"


def _group(
    deliveries: Sequence[Delivery],
    contents: dict[str, bytes | None],
    *,
    by_domain: bool,
    per_recipient: Callable[[str, Stream], bool] | None = None,
) -> list[Job]:
    """One job per message and recipient domain (RFC 5321 §5.1 routes by domain); through a
    smarthost, one job per message; one per recipient for the messages whose headers differ
    per recipient (``per_recipient``: a tenant's marketing with List-Unsubscribe)."""
    groups: dict[tuple[str, str, int], list[Delivery]] = defaultdict(list)
    for d in deliveries:
        split = per_recipient is not None and per_recipient(d.tenant, d.stream)
        alone = d.recipient_id if split else 0
        domain = d.address.rpartition("@")[2]
        groups[(d.queue_id, domain if by_domain else "", alone)].append(d)
    return [Job(q, dom, tuple(ds), contents.get(q)) for (q, dom, _), ds in groups.items()]
