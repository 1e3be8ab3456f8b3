"""Recording final outcomes and applying the auto-block policy.

Owns: turning a final outcome (relay result or asynchronous report) into the suppression
the policy asks for, with the event that caused it. Shared by the relay and the bounce
sink. Does not own: the policy itself (``core.policy``, pure) or the store.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from gateway.core.errors import StoreError
from gateway.core.ids import new_queue_id
from gateway.core.lifecycle import FINAL_FAILURES, effect_of_event
from gateway.core.model import (
    Category,
    Event,
    EventType,
    NewMessage,
    Status,
    Suppression,
    SuppressionReason,
)
from gateway.core.notice import FailedRecipient, build_notice
from gateway.core.policy import BlockDecision, PastOutcome, PolicySettings, decide, needs_alert
from gateway.core.ports import History, StreamStore, Suppressions, TenantStore
from gateway.core.streams import (
    PROBATION_CATEGORIES,
    Probation,
    Scope,
    StreamSettings,
    scope_of,
)
from gateway.observe.logging import log_event
from gateway.services.tenants import TenantDirectory

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from gateway.core.lifecycle import Effect
    from gateway.core.ports import Clock

log = logging.getLogger("gateway.services.outcomes")


class PolicyStore(History, Suppressions, TenantStore, StreamStore, Protocol):
    """What the policy reads (an address's history, a tenant's own threshold) and writes
    (a suppression with its event)."""


class PolicyApplier:
    """Applies ``core.policy.decide`` after each final outcome.

    Args:
        store: where history is read and suppressions are written.
        settings: the policy's knobs.
        clock: time source.
        tenants: the tenant directory (each tenant's own threshold and window); by
            default one of its own over ``store`` (``app`` passes the process's).
    """

    def __init__(
        self,
        store: PolicyStore,
        settings: PolicySettings,
        clock: Clock,
        tenants: TenantDirectory | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.tenants = TenantDirectory(store) if tenants is None else tenants

    async def settings_for(self, tenant: str) -> PolicySettings:
        """The tenant's policy: ``[policy]`` with the tenant's own threshold and window
        (admin API ``PATCH /api/v1/tenants/{name}``, seen on every node within about a
        second); ``[policy]`` alone while the directory cannot be read."""
        try:
            row = await self.tenants.settings(tenant)
        except StoreError as exc:
            log_event(log, "policy.overrides_failed", logging.WARNING, error=str(exc))
            return self.settings
        if row is None or not (row.failure_threshold or row.failure_window):
            return self.settings
        return replace(
            self.settings,
            failure_threshold=row.failure_threshold or self.settings.failure_threshold,
            failure_window=row.failure_window or self.settings.failure_window,
        )

    async def after(
        self,
        event: Event,
        effect: Effect,
        feedback_type: str | None = None,
        event_id: int | None = None,
    ) -> Suppression | None:
        """Decide about the address after ``event`` (already recorded) and suppress if asked.

        Args:
            event: the event that recorded the outcome or the report.
            effect: what it did (``core.lifecycle.effect``); nothing happens unless
                ``effect.decide``.
            feedback_type: the ARF ``Feedback-Type`` of a complaint.
            event_id: the event's id, kept on the suppression.

        Returns:
            The suppression written, if any.
        """
        planned = await self.plan(event, effect, feedback_type, event_id)
        if planned is None:
            return None
        suppression, suppressed = planned
        # The suppression and its event in one transaction: a crash between two writes
        # would leave one without the other (issue 13).
        written = await self.store.suppress_with_event(suppression, suppressed)
        assert written is not None  # keep_permanent is off: always written
        self.log_suppressed(written[0])
        return written[0]

    def log_suppressed(self, suppression: Suppression) -> None:
        """Log a suppression the policy asked for, once it is written."""
        log_event(
            log,
            "policy.suppressed",
            tenant=suppression.tenant,
            rcpt=suppression.address,
            reason=suppression.reason.value,
            expires=suppression.expires_at,
        )

    async def plan(
        self,
        event: Event,
        effect: Effect,
        feedback_type: str | None = None,
        event_id: int | None = None,
    ) -> tuple[Suppression, Event] | None:
        """The suppression the policy asks for after ``event``, with its ``suppressed``
        event, without writing them: ``after`` writes them, and the relay records them with
        the attempt's outcome, in its transaction (``Outcome.suppress``).

        Args are ``after``'s; ``event`` need not be recorded yet (then ``event_id`` is
        ``None``, and the store links the suppression to the event when it records it).
        """
        if not effect.decide:
            return None
        category = event.category
        now = event.at
        alert = needs_alert(category, feedback_type)
        if alert is not None:
            log_event(
                log,
                "policy.alert",
                logging.WARNING,
                alert=alert,
                tenant=event.tenant,
                category=category,
                queue_id=event.queue_id,
            )
        settings = await self.settings_for(event.tenant)
        since = now - settings.failure_window
        previous = await self.store.failure_streak(event.tenant, event.address, since)
        # A delivery that a later failure report (an asynchronous bounce) contradicts was not
        # a success: its ``sent`` event must not end the streak.
        contradicted = {e.recipient_id for e in (*previous, event) if _is_failure_report(e)}
        history = [
            _past(e)
            for e in previous
            if e.event_id != event_id
            and not (e.type is EventType.SENT and e.recipient_id in contradicted)
        ]
        decision = decide(
            category,
            effect.counts_as,
            now,
            [h for h in history if h is not None],
            settings,
            feedback_type,
        )
        note = f"{category.value if category else 'failure'}: {event.text[:200]}"
        details: dict[str, str] = {}
        probation = await self._probation(event, effect)
        if probation is not None:
            # The first blocking failure during a probation blocks again at once, whatever
            # the streak (issue 15): the unblock is named in the note and the event.
            decision = BlockDecision(SuppressionReason.PROBATION_FAILURE, None)
            note = (
                f"probation_failure: {category.value if category else 'failure'} during the"
                f" probation of the unblock of {probation.since:%Y-%m-%d %H:%M} UTC"
                f" (event {probation.unblock_event_id}): {event.text[:160]}"
            )
            details["unblock_event_id"] = str(probation.unblock_event_id)
            details["probation_since"] = probation.since.isoformat()
        if decision is None:
            return None
        scope = await self._scope(event, decision.reason)
        details["scope"] = scope.value
        suppression = Suppression(
            tenant=event.tenant,
            address=event.address,
            reason=decision.reason,
            since=now,
            expires_at=decision.expires_at,
            event_id=event_id,
            note=note,
            scope=scope,
        )
        return suppression, Event(
            None,
            event.tenant,
            event.address,
            EventType.SUPPRESSED,
            now,
            queue_id=event.queue_id,
            category=category,
            reason=decision.reason.reason,
            text=f"Suppressed ({decision.reason.value}, {scope.value})",
            details=details,
        )

    async def _probation(self, event: Event, effect: Effect) -> Probation | None:
        """The running probation of the event's address when this outcome is a final
        failure of a blocking category (``core.streams.PROBATION_CATEGORIES``)."""
        if effect.counts_as not in FINAL_FAILURES:
            return None
        category = event.category or Category.RECEIVING_PROBLEM  # as core.policy reads it
        if category not in PROBATION_CATEGORIES:
            return None
        try:
            found = await self.store.probations(event.address, event.tenant, event.at)
        except StoreError as exc:
            log_event(log, "policy.probation_failed", logging.WARNING, error=str(exc))
            return None
        return found[0] if found else None

    async def _scope(self, event: Event, reason: SuppressionReason) -> Scope:
        """What the suppression stops (issue 15): an opt-out the stream of the message it
        came from, a complaint that stream or every stream by the tenant's
        ``complaint_scope``; failures every stream. Without a known message: every stream."""
        if reason not in (SuppressionReason.OPT_OUT, SuppressionReason.COMPLAINT):
            return Scope.ALL
        try:
            stream = None
            if event.queue_id is not None:
                stream = await self.store.message_stream(event.queue_id)
            row = await self.tenants.settings(event.tenant)
        except StoreError as exc:
            log_event(log, "policy.scope_failed", logging.WARNING, error=str(exc))
            return Scope.ALL
        if stream is None:
            return Scope.ALL
        if reason is SuppressionReason.OPT_OUT:
            return scope_of(stream)
        return (row.streams if row is not None else StreamSettings()).complaint(stream)


def _is_failure_report(event: Event) -> bool:
    """An asynchronous report saying a delivery finally failed (not a delay notice)."""
    if event.type is not EventType.REPORT or event.recipient_id is None:
        return False
    found = effect_of_event(event)
    return found is not None and found.final_failure


def _past(event: Event) -> PastOutcome | None:
    """How the policy reads an earlier event (``Effect.counts_as``); ``None`` when it never
    counts: deferrals, delay notices, complaints, auto-replies, cancellations."""
    if event.type is EventType.UNSUPPRESSED:
        # An admin's unblock resets the counter: it reads as a success.
        return PastOutcome(event.at, Status.SENT, Category.DELIVERED)
    found = effect_of_event(event)
    if found is None or found.counts_as is None:
        return None
    return PastOutcome(event.at, found.counts_as, event.category)


class BounceNotifier:
    """Builds a classic bounce notice (RFC 3464 DSN) to the envelope sender of a message
    that finally failed, for tenants that ask for it (``bounce_notice``).

    The notice is an ordinary queued message with a null reverse-path (RFC 5321 §4.5.5), so
    it can never cause a notice of its own, and it goes through the same durable queue: the
    relay carries it on the outcomes that cause it (``Outcome.notice``), and the store
    queues it in their transaction (issue 13), so a crash leaves both or neither.

    Args:
        reporting_mta: our host name.
        clock: time source.
        on_queued: wakes the relay.
    """

    def __init__(self, reporting_mta: str, clock: Clock, on_queued: Callable[[], None]) -> None:
        self.reporting_mta = reporting_mta
        self.clock = clock
        self.on_queued = on_queued

    def build(
        self,
        tenant: str,
        queue_id: str,
        sender: str,
        arrival: datetime,
        failed: Sequence[FailedRecipient],
        original: bytes,
    ) -> NewMessage | None:
        """The notice about ``failed`` recipients of message ``queue_id`` (its ``original``
        content quoted); ``None`` for a null sender or nothing failed."""
        if not sender or not failed:
            return None
        now = self.clock.now()
        content = build_notice(
            reporting_mta=self.reporting_mta,
            sender=sender,
            queue_id=queue_id,
            arrival=arrival,
            now=now,
            failed=failed,
            original=original,
        )
        return NewMessage(
            queue_id=new_queue_id(),
            tenant=tenant,
            mail_from="",
            recipients=(sender,),
            content=content,
            message_id=None,
            subject="Undelivered Mail Returned to Sender",
            received_at=now,
        )

    def queued(self, notice: NewMessage, queue_id: str, failed: int) -> None:
        """The notice about message ``queue_id`` was committed: wake the relay, log it."""
        self.on_queued()
        log_event(
            log,
            "outcomes.bounce_notice",
            queue_id=queue_id,
            notice=notice.queue_id,
            tenant=notice.tenant,
            failed=failed,
        )
