"""What one attempt did, written down: outcomes, their events, the policy's suppressions and
the bounce notice to the sender, in one transaction per attempt.

Owns: turning replies into outcomes (``core.lifecycle.transition``, classification of the
failure replies), asking the policy what a final failure suppresses, building the notice
for tenants that want one, and retrying a store that is briefly unavailable. Does not own:
the attempt itself (``relay.attempt``) or the scheduling (``relay.worker``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gateway.core.errors import Phase, StoreError, StoreUnavailable
from gateway.core.lifecycle import Effect, Result, transition
from gateway.core.model import Category, Delivery, Event, NewMessage, Status, Suppression
from gateway.core.notice import FailedRecipient
from gateway.core.ports import Outcome, notices_of
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from gateway.config import RelayConfig
    from gateway.core.ports import Clock, Store
    from gateway.core.replies import Reply
    from gateway.relay.shaping import Shaper
    from gateway.services.outcomes import BounceNotifier, PolicyApplier

log = logging.getLogger("gateway.relay")

Classifier = Callable[[int | None, str | None, str], Category]

_RECORD_TRIES = 5  # a store briefly unavailable: retried, then left to the lease


@dataclass(frozen=True, slots=True)
class Job:
    """One transaction to make: one message, one destination domain, its recipients."""

    queue_id: str
    domain: str
    deliveries: tuple[Delivery, ...]
    content: bytes | None = None  # loaded with the claim; None: the message is gone


class Recorder:
    """Records attempts (see the module docstring).

    Args:
        config: the ``[relay]`` section (retry intervals, queue lifetime).
        store: where outcomes go.
        clock: time source.
        policy: what a final failure suppresses.
        classify: the bounce classifier for synchronous replies.
        node_id: the lease owner the outcomes are recorded for.
        shaper: per-tenant options (whether a tenant wants bounce notices).
        back_off: waits between retries of an unavailable store (returns early on stop).
    """

    def __init__(
        self,
        config: RelayConfig,
        store: Store,
        clock: Clock,
        policy: PolicyApplier,
        classify: Classifier,
        node_id: str,
        shaper: Shaper | None,
        back_off: Callable[[], Awaitable[None]],
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.policy = policy
        self.classify = classify
        self.node_id = node_id
        self.shaper = shaper
        self.notifier: BounceNotifier | None = None
        self._back_off = back_off

    async def record(
        self,
        job: Job,
        replies_by_rcpt: dict[str, Reply],
        kind: Result,
        host: str,
        phase: Phase | None = None,
    ) -> None:
        """The outcome ``kind`` with each recipient's reply, for the recipients of ``job``
        named in ``replies_by_rcpt`` by the forward-path sent (``Delivery.wire_address``, the
        address as the client gave it); events and look-ups name ``address``."""
        if not replies_by_rcpt:
            return
        now = self.clock.now()
        outcomes: list[tuple[Outcome, Delivery, Effect]] = []
        verbose = log.isEnabledFor(logging.INFO)  # per recipient: skip building the fields
        for delivery in job.deliveries:
            reply = replies_by_rcpt.get(delivery.wire_address)
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
                details={"stream": delivery.stream.value},  # webhooks carry it (issue 15)
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
        recorded = await self.record_outcomes(job.queue_id, [o for o, _, _ in outcomes])
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

    async def record_outcomes(
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
