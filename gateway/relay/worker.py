"""The relay: claim due recipients, deliver them, record what happened.

Owns: the scheduling loop (woken at once by the intake, otherwise sleeping until the next
due time), claiming by whole messages with their content (one store round trip), grouping
claimed recipients into one transaction per message and destination,
routing (MX order, A fallback, null MX, smarthost), per-destination concurrency and
per-provider rate limits, and turning each transaction's partitioned result into outcomes.
Does not own: the SMTP dialogue (``relay.client``), classification (``bounce``), retry
arithmetic (``core.schedule``/``core.lifecycle``) or the auto-block policy (``outcomes``).

Claims are leases (``relay.lease``): a recipient claimed by a process that dies becomes due
again when the lease runs out, and at start-up a node releases its own previous leases.

Suppressions are checked again before each attempt, for the whole claimed batch in one
query: a recipient whose address was suppressed after it was queued (by an admin, a
complaint, another message's hard bounce; in clear or, for an erased address, hashed) is
not sent. It ends ``suppressed``, with the suppression's reason on its event.

Routing faults and what they mean for the recipients:

* null MX (RFC 7505) → bounced ``5.1.10``, without connecting; NXDOMAIN or no MX and no
  address → bounced ``5.1.2``; SERVFAIL or a DNS timeout → deferred ``4.4.3``;
* an MX that is this gateway → bounced ``5.4.6`` (``MAIL_LOOP``), before any message is
  sent: by name (``local_names``), by address and port (``local_endpoints``: one of our
  SMTP listeners), or by the server greeting us with our own name (``relay.client``);
* a ``5xx`` greeting (RFC 5321 §3.1 "no SMTP service here") → the next MX, then deferred:
  it names no recipient and is as often a rate limit, a blocklist or maintenance on one
  MX as a refusal of the domain; if it never changes, the recipient expires after
  ``relay.max_queue_lifetime``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from gateway.core import replies, verp
from gateway.core.errors import (
    DnsPermanent,
    DnsTemporary,
    PermanentRelayError,
    Phase,
    StoreError,
    StoreUnavailable,
    TransientRelayError,
)
from gateway.core.lifecycle import Effect, Result, Suppressed, effect, transition
from gateway.core.model import Category, Delivery, Event, NewMessage, Status, Suppression
from gateway.core.notice import FailedRecipient
from gateway.core.ports import Outcome, notices_of
from gateway.core.routing import order_mx, provider_of
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from gateway.config import BounceConfig, RelayConfig
    from gateway.core.ports import Clock, Resolver, Store
    from gateway.core.replies import Reply
    from gateway.relay.client import SmtpClient, TransactionResult
    from gateway.relay.shaping import Shaper
    from gateway.services.outcomes import BounceNotifier, PolicyApplier

log = logging.getLogger("gateway.relay")

Classifier = Callable[[int | None, str | None, str], Category]


class Signer(Protocol):
    """DKIM: ``await signer(tenant, content)`` returns the header to prepend (or ``b""``),
    signed off the event loop."""

    async def refresh(self) -> None: ...

    async def __call__(self, tenant: str, content: bytes) -> bytes: ...


_POLL = 5.0  # seconds: upper bound on sleeping, so other processes' new mail is seen
_MAX_ADDRESSES = 6  # RFC 5321 §5.1: try a bounded number of addresses per attempt
# While the store fails (disk full, locked): pause between claims instead of spinning, and
# retry recording an attempt's result a few times before leaving it to the lease.
_STORE_BACKOFF = 1.0
_RECORD_TRIES = 5


@dataclass(frozen=True, slots=True)
class Job:
    """One transaction to make: one message, one destination domain, its recipients."""

    queue_id: str
    domain: str
    deliveries: tuple[Delivery, ...]
    content: bytes | None = None  # loaded with the claim; None: the message is gone


class RateLimiter:
    """Spaces sends per provider to at most ``rate`` per second (config ``relay.rate_limits``)."""

    def __init__(self, limits: Sequence[tuple[str, float]]) -> None:
        self.intervals = {name: 1.0 / rate for name, rate in limits}
        self._next: dict[str, float] = {}

    async def wait(self, provider: str) -> None:
        interval = self.intervals.get(provider)
        if interval is None:
            return
        now = time.monotonic()
        slot = max(now, self._next.get(provider, now))
        self._next[provider] = slot + interval
        if slot > now:
            await asyncio.sleep(slot - now)


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
    ) -> None:
        self.config = config
        self.bounce = bounce
        self.store = store
        self.resolver = resolver
        self.client = client
        self.clock = clock
        self.policy = policy
        self.classify = classify
        self.node_id = node_id
        self.local_names = {n.lower().rstrip(".") for n in local_names if n}
        self.signer = signer
        self.shaper = shaper
        self.notifier = notifier
        self.local_endpoints = local_endpoints
        self.secret = bounce.secret.encode()
        self.rate = RateLimiter(config.rate_limits)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._free = config.concurrency
        self._domains: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(config.per_destination_concurrency)
        )
        self.running = False
        self.in_flight = 0

    def wake(self) -> None:
        """New mail is queued: look for due work now instead of at the next timer."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; in-flight deliveries finish (``run`` returns when they have)."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until ``stop``; then wait for in-flight jobs."""
        released = await self._release_own_claims()
        if released:
            log_event(log, "relay.released_leases", count=released, node=self.node_id)
        self.running = True
        try:
            async with asyncio.TaskGroup() as jobs:
                while not self._stopping.is_set():
                    claim = await self._claim()
                    if claim is None:
                        await self._back_off()
                        continue
                    claimed, contents = claim
                    if not claimed:
                        await self._sleep()
                        continue
                    claimed = await self._drop_suppressed(claimed)
                    if not claimed:
                        continue  # all of them were suppressed: more may be due already
                    split = None
                    if self.shaper is not None:
                        await self.shaper.refresh()
                        split = self.shaper.per_recipient
                    by_domain = self.config.smarthost is None
                    for job in _group(claimed, contents, by_domain=by_domain, per_recipient=split):
                        await self._slots.acquire()
                        self._free -= 1
                        jobs.create_task(self._run_job(job))
        finally:
            self.running = False
            await self.client.close()

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

    async def _claim(self) -> tuple[list[Delivery], dict[str, bytes | None]] | None:
        """Due recipients for the free slots, by whole messages, with the messages' content
        (one store round trip); ``None`` when the store failed."""
        # Claim only as many recipients as there are free slots: nothing waits leased long
        # (the rest of a message cut by the limit comes along: one transaction per message).
        limit = min(self.config.batch_size, max(self._free, 0))
        if limit == 0:
            async with self._slots:  # wait for one slot to free up, then give it back
                pass
            return [], {}
        self._wake.clear()
        try:
            return await self.store.claim_due_with_content(
                self.clock.now(), limit, self.node_id, self.config.lease
            )
        except StoreError as exc:
            log_event(log, "relay.claim_failed", logging.ERROR, error=str(exc))
            return None

    async def _drop_suppressed(self, claimed: list[Delivery]) -> list[Delivery]:
        """The claimed recipients whose address is not suppressed; the others are recorded
        as ``suppressed`` (one query for the batch, one write when any is found).

        A store that fails the look-up leaves the batch as it was: the intake checked every
        address at ``RCPT``, and holding the batch would leave it leased for ``relay.lease``.
        """
        now = self.clock.now()
        try:
            found = await self.store.suppressions_among(
                [(d.tenant, d.address) for d in claimed], now
            )
        except StoreError as exc:
            log_event(log, "relay.suppression_check_failed", logging.ERROR, error=str(exc))
            return claimed
        if not found:
            return claimed
        keep: list[Delivery] = []
        cancelled: list[Outcome] = []
        for delivery in claimed:
            suppression = found.get((delivery.tenant, delivery.address))
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
                details={"suppressed_since": suppression.since.isoformat()},
            )
            cancelled.append(Outcome(delivery.recipient_id, change.status, event))
            log_event(
                log,
                "relay.suppressed",
                queue_id=delivery.queue_id,
                rcpt=delivery.address,
                reason=reason,
            )
        # Not recorded (the store failed): still not sent; the lease runs out and the next
        # claim checks again.
        await self._record_outcomes(cancelled[0].event.queue_id or "", cancelled)
        return keep

    async def _back_off(self) -> None:
        """Pause ``_STORE_BACKOFF`` seconds, or until ``stop``."""
        try:
            async with asyncio.timeout(_STORE_BACKOFF):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _sleep(self) -> None:
        timeout = _POLL
        try:
            due = await self.store.next_due()
        except StoreError:
            due = None
        if due is not None:
            timeout = min(_POLL, max((due - self.clock.now()).total_seconds(), 0.0))
        if timeout <= 0:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _run_job(self, job: Job) -> None:
        self.in_flight += 1
        try:
            await self._deliver(job)
        except Exception:
            # A bug must not take the relay down: the lease returns the work to the queue.
            log.exception("relay.job_crashed", extra={"fields": {"queue_id": job.queue_id}})
        finally:
            self.in_flight -= 1
            self._free += 1
            self._slots.release()
            # The job may have scheduled a retry sooner than the loop's current sleep (which
            # saw this job's rows leased): let the loop look at the next due time again.
            self._wake.set()

    # --- one transaction ------------------------------------------------------------------

    async def _deliver(self, job: Job) -> None:
        content = job.content  # loaded with the claim, in the same transaction
        if content is None:
            gone = replies.Reply(554, "5.3.0", "Message content no longer available")
            await self._record(job, {d.address: gone for d in job.deliveries}, Result.BOUNCED, "")
            return
        first = job.deliveries[0]
        if self.shaper is not None and len(job.deliveries) == 1:
            # RFC 8058: prepended before signing, so DKIM covers List-Unsubscribe(-Post).
            content = self.shaper.headers_for(first.tenant, first.address, content) + content
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
        rcpts = [d.address for d in job.deliveries]
        # The destination's slot covers the SMTP attempt only: recording the outcome waits
        # for an fsync, and holding the slot through it would cap each destination at
        # per_destination_concurrency / commit time messages per second.
        async with self._domains[job.domain]:
            result, failure = await self._attempt(job.domain, return_path, rcpts, content)
        if failure is not None:
            kind = Result.BOUNCED if failure.reply.is_permanent else Result.DEFERRED
            await self._record(
                job, dict.fromkeys(rcpts, failure.reply), kind, failure.host, failure.phase
            )
            return
        assert result is not None
        await self._record(job, result.accepted, Result.ACCEPTED, result.host)
        await self._record(job, result.deferred, Result.DEFERRED, result.host)
        await self._record(job, result.bounced, Result.BOUNCED, result.host)

    async def _attempt(
        self, domain: str, return_path: str, rcpts: list[str], content: bytes
    ) -> tuple[TransactionResult | None, TransientRelayError | PermanentRelayError | None]:
        smarthost = self.config.smarthost
        if smarthost is not None:
            auth = None
            if self.config.smarthost_user:
                auth = (self.config.smarthost_user, self.config.smarthost_password)
            try:
                result = await self.client.send(
                    smarthost.host, smarthost.port, return_path, rcpts, content, auth=auth
                )
            except PermanentRelayError as exc:
                return None, _greeting_refusal(exc) or exc
            except TransientRelayError as exc:
                return None, exc
            return result, None
        try:
            answer = await self.resolver.mx(domain)
        except DnsPermanent:
            return None, PermanentRelayError(replies.NO_SUCH_DOMAIN, Phase.RESOLVE, domain)
        except DnsTemporary:
            return None, TransientRelayError(replies.DNS_TEMPFAIL, Phase.RESOLVE, domain)
        if answer.null:
            return None, PermanentRelayError(replies.NULL_MX, Phase.RESOLVE, domain)
        last: TransientRelayError | PermanentRelayError = TransientRelayError(
            replies.CONNECT_FAILED, Phase.CONNECT, domain
        )
        tried = 0
        own = self._own_endpoints()
        for host in order_mx(answer):
            if host.lower().rstrip(".") in self.local_names:
                # RFC 5321 §5.1: an MX naming ourselves means a loop, not a destination.
                return None, PermanentRelayError(replies.MAIL_LOOP, Phase.RESOLVE, host)
            try:
                addresses = await self.resolver.addresses(host)
            except (DnsPermanent, DnsTemporary):
                continue
            for address in addresses:
                if _is_own(address, self.config.mx_port, own):
                    text = f"{host} ({address}:{self.config.mx_port}) is this gateway: mail loop"
                    return None, PermanentRelayError(
                        replies.MAIL_LOOP.with_text(text), Phase.RESOLVE, host
                    )
                if tried >= _MAX_ADDRESSES:
                    return None, last
                tried += 1
                await self.rate.wait(provider_of(host))
                try:
                    result = await self.client.send(
                        address,
                        self.config.mx_port,
                        return_path,
                        rcpts,
                        content,
                        server_name=host,
                    )
                except PermanentRelayError as exc:
                    exc.host = host  # the MX name, not the address: stats group by MX host
                    deferral = _greeting_refusal(exc)
                    if deferral is None:
                        return None, exc
                    last = deferral
                    continue
                except TransientRelayError as exc:
                    exc.host = host
                    last = exc
                    if exc.phase is Phase.DOT:
                        # The message may have been delivered: don't send it to another MX
                        # now, retry later (at-least-once, duplicates kept rare).
                        return None, exc
                    continue
                return replace(result, host=host), None
        return None, last

    def _own_endpoints(self) -> set[tuple[str, int]]:
        if self.local_endpoints is None:
            return set()
        return {(str(a), int(p)) for a, p in self.local_endpoints()}

    async def _record(
        self,
        job: Job,
        replies_by_rcpt: dict[str, Reply],
        kind: Result,
        host: str,
        phase: Phase | None = None,
    ) -> None:
        if not replies_by_rcpt:
            return
        now = self.clock.now()
        outcomes: list[tuple[Outcome, Delivery, Effect]] = []
        verbose = log.isEnabledFor(logging.INFO)  # per recipient: skip building the fields
        for delivery in job.deliveries:
            reply = replies_by_rcpt.get(delivery.address)
            if reply is None:
                continue
            category = None
            if kind is not Result.ACCEPTED:
                category = self.classify(reply.code, reply.enhanced or None, reply.text)
                if phase is Phase.CONNECT:
                    # No remote server answered: the reply is our own, about the network.
                    category = Category.RECEIVING_PROBLEM
            step = transition(
                delivery,
                kind,
                reply,
                category,
                now,
                self.config.retry_intervals,
                self.config.max_queue_lifetime,
            )
            event = Event(
                delivery.recipient_id,
                delivery.tenant,
                delivery.address,
                step.event,
                now,
                queue_id=delivery.queue_id,
                category=step.category,
                reply_code=reply.code,
                enhanced=reply.enhanced or None,
                text=reply.text,
                remote_host=host,
                reason=step.reason,
            )
            outcome = Outcome(
                delivery.recipient_id,
                step.status,
                event,
                step.due_at,
                step.category,
                await self._suppression_after(event, step.effect),
            )
            outcomes.append((outcome, delivery, step.effect))
            if verbose:
                log_event(
                    log,
                    "relay.attempt",
                    queue_id=delivery.queue_id,
                    rcpt=delivery.address,
                    status=step.status.value,
                    reply=str(reply),
                    host=host,
                    category=step.category.value if step.category else None,
                    attempt=delivery.attempts + 1,
                )
        failed = [
            _failed_recipient(outcome, host)
            for outcome, _, change in outcomes
            if change.final_failure
        ]
        notice = self._notice(job, failed)
        if notice is not None:
            # Queued with the outcomes that cause it, in their transaction (issue 13).
            outcomes = [
                (replace(o, notice=notice) if change.final_failure else o, d, change)
                for o, d, change in outcomes
            ]
        recorded = await self._record_outcomes(job.queue_id, [o for o, _, _ in outcomes])
        if recorded is None:
            return
        for outcome, delivery, _ in outcomes:
            if outcome.recipient_id not in recorded:
                log_event(
                    log,
                    "relay.lease_lost",
                    logging.WARNING,
                    queue_id=delivery.queue_id,
                    rcpt=delivery.address,
                )
                continue
            if outcome.suppress is not None:  # recorded with the outcome
                self.policy.log_suppressed(outcome.suppress[0])
        queued = notices_of([o for o, _, _ in outcomes], recorded)
        if queued and self.notifier is not None:
            self.notifier.queued(queued[0], job.queue_id, len(failed))

    async def _suppression_after(
        self, event: Event, change: Effect
    ) -> tuple[Suppression, Event] | None:
        """The suppression the policy asks for after this outcome, to record with it in one
        transaction (``Outcome.suppress``, issue 13). A success cannot suppress anything;
        the policy reads it as history later. The history unreadable: none (logged)."""
        if not change.decide:
            return None
        try:
            return await self.policy.plan(event, change)
        except StoreError as exc:
            log_event(log, "relay.policy_failed", logging.ERROR, error=str(exc))
            return None

    async def _record_outcomes(
        self, queue_id: str, outcomes: list[Outcome]
    ) -> dict[int, int] | None:
        """Record, retrying a transient store failure a few times: a result left unrecorded
        waits for the lease to run out, and a delivery is then made again (a duplicate).
        ``queue_id`` names the (first) message in the logs."""
        for attempt in range(1, _RECORD_TRIES + 1):
            try:
                return await self.store.record_outcomes(outcomes, self.node_id)
            except StoreUnavailable as exc:
                log_event(
                    log,
                    "relay.record_failed",
                    logging.ERROR,
                    queue_id=queue_id,
                    error=str(exc),
                    attempt=attempt,
                )
                if attempt < _RECORD_TRIES:
                    await self._back_off()
            except StoreError as exc:
                log_event(
                    log, "relay.record_failed", logging.ERROR, queue_id=queue_id, error=str(exc)
                )
                break
        # Not recorded: the lease runs out and the recipients are tried again.
        return None

    def _notice(self, job: Job, failed: list[FailedRecipient]) -> NewMessage | None:
        """The bounce notice to the sender about ``failed``, for a tenant that wants one."""
        first = job.deliveries[0]
        if not failed or self.notifier is None or self.shaper is None or not first.mail_from:
            return None
        if not self.shaper.options(first.tenant).bounce_notice:
            return None
        return self.notifier.build(
            first.tenant,
            job.queue_id,
            first.mail_from,
            first.received_at,
            failed,
            job.content or b"",
        )


def _failed_recipient(outcome: Outcome, host: str) -> FailedRecipient:
    """A final failure as the bounce notice names it."""
    ev = outcome.event
    return FailedRecipient(
        ev.address,
        ev.enhanced or f"{str(ev.reply_code or 5)[0]}.0.0",
        f"{ev.reply_code or ''} {ev.enhanced or ''} {ev.text}".strip(),
        host,
        expired=outcome.status is Status.EXPIRED,
    )


def _greeting_refusal(exc: PermanentRelayError) -> TransientRelayError | None:
    """A ``5xx`` greeting as a deferral (see the module docstring); ``None`` for anything
    else, including a server that greeted us with our own name (a loop stays permanent)."""
    if exc.phase is not Phase.GREETING or exc.reply.enhanced == replies.MAIL_LOOP.enhanced:
        return None
    text = f"{exc.host} refused service at the greeting: {exc.reply}"
    return TransientRelayError(replies.GREETING_REFUSED.with_text(text), exc.phase, exc.host)


def _is_own(address: str, port: int, own: set[tuple[str, int]]) -> bool:
    """Whether ``address:port`` is one of our listeners. A wildcard listener (``0.0.0.0``,
    ``::``) answers on every local address; loopback addresses are the ones we can know
    without asking the system for its interfaces."""
    if not own:
        return False
    if (address, port) in own:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    wildcard = any(p == port and a in ("0.0.0.0", "::", "") for a, p in own)  # noqa: S104
    return wildcard and ip.is_loopback


def _group(
    deliveries: Sequence[Delivery],
    contents: dict[str, bytes | None],
    *,
    by_domain: bool,
    per_recipient: Callable[[str], bool] | None = None,
) -> list[Job]:
    """One job per message and recipient domain (RFC 5321 §5.1 routes by domain); through a
    smarthost, one job per message; one per recipient for tenants whose headers differ per
    recipient (``per_recipient``)."""
    groups: dict[tuple[str, str, int], list[Delivery]] = defaultdict(list)
    for d in deliveries:
        alone = d.recipient_id if per_recipient is not None and per_recipient(d.tenant) else 0
        domain = d.address.rpartition("@")[2]
        groups[(d.queue_id, domain if by_domain else "", alone)].append(d)
    return [Job(q, dom, tuple(ds), contents.get(q)) for (q, dom, _), ds in groups.items()]
