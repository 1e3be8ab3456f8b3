"""Recording final outcomes and applying the auto-block policy.

Owns: turning a final outcome (relay result or asynchronous report) into the suppression
the policy asks for, with the event that caused it. Shared by the relay and the bounce
sink. Does not own: the policy itself (``core.policy``, pure) or the store.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from gateway.core.model import (
    Category,
    Event,
    EventType,
    Status,
    Suppression,
)
from gateway.core.policy import PastOutcome, PolicySettings, decide, needs_alert
from gateway.logging import log_event

if TYPE_CHECKING:
    from gateway.core.ports import Clock, Store

log = logging.getLogger("gateway.outcomes")

_FINAL_EVENTS = {
    EventType.BOUNCED: Status.BOUNCED,
    EventType.EXPIRED: Status.EXPIRED,
    EventType.SENT: Status.SENT,
    EventType.REPORT: Status.BOUNCED,
}
_NOT_FAILURE_REPORTS = frozenset({Category.DELIVERED, Category.AUTO_REPLY, Category.COMPLAINT})


class PolicyApplier:
    """Applies ``core.policy.decide`` after each final outcome.

    Args:
        store: where history is read and suppressions are written.
        settings: the policy's knobs.
        clock: time source.
    """

    def __init__(self, store: Store, settings: PolicySettings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    async def after(
        self,
        event: Event,
        status: Status,
        category: Category | None,
        feedback_type: str | None = None,
        event_id: int | None = None,
    ) -> Suppression | None:
        """Decide about the address after ``event`` (already recorded) and suppress if asked.

        Returns:
            The suppression written, if any.
        """
        if status not in (Status.BOUNCED, Status.EXPIRED, Status.SENT):
            return None
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
        since = now - self.settings.failure_window
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
            status,
            now,
            [h for h in history if h is not None],
            self.settings,
            feedback_type,
        )
        if decision is None:
            return None
        suppression = Suppression(
            tenant=event.tenant,
            address=event.address,
            reason=decision.reason,
            since=now,
            expires_at=decision.expires_at,
            event_id=event_id,
            note=f"{category.value if category else 'failure'}: {event.text[:200]}",
        )
        await self.store.add_suppression(suppression)
        await self.store.record_event(
            Event(
                None,
                event.tenant,
                event.address,
                EventType.SUPPRESSED,
                now,
                queue_id=event.queue_id,
                category=category,
                reason=decision.reason.value,
                text=f"Suppressed ({decision.reason.value})",
            )
        )
        log_event(
            log,
            "policy.suppressed",
            tenant=event.tenant,
            rcpt=event.address,
            reason=decision.reason.value,
            expires=decision.expires_at,
        )
        return suppression


def _is_failure_report(event: Event) -> bool:
    """An asynchronous report saying a delivery finally failed (not a delay notice)."""
    return (
        event.type is EventType.REPORT
        and event.recipient_id is not None
        and event.category is not None
        and event.category not in _NOT_FAILURE_REPORTS
        and event.details.get("action") != "delayed"
    )


def _past(event: Event) -> PastOutcome | None:
    if event.type is EventType.UNSUPPRESSED:
        # An admin's unblock resets the counter: it reads as a success.
        return PastOutcome(event.at, Status.SENT, Category.DELIVERED)
    status = _FINAL_EVENTS.get(event.type)
    if status is None:
        return None
    if event.type is EventType.REPORT and event.category is Category.DELIVERED:
        status = Status.SENT
    elif event.type is EventType.REPORT and event.details.get("action") == "delayed":
        return None  # a delay notice is a deferral, and deferrals never count
    return PastOutcome(event.at, status, event.category)
