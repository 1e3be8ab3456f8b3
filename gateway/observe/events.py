"""Domain events: what changed, published after the store has committed it.

Owns: the typed events (``MessageAccepted``, ``RecipientChanged``, ``SuppressionAdded``,
``SuppressionRemoved``), the ``EventSink`` contract, and ``ObservedStore``, a ``Store`` that
delegates to the real one and, after each successful write, hands the events to the sinks
(metrics, webhooks). Does not own: what a sink does with them (``metrics``, ``webhooks``),
nor the writes themselves (``store``).

Why a wrapper: every state change already goes through the ``Store`` port, so observing
the port sees intake, relay, reports, policy and admin alike without touching the protocol
adapters. The admin writes (``suppress_with_event``, ``lift_suppressions``, ``set_held``,
``cancel_message``) are wrapped too; ``erase_address`` and the retention
purges are deliberately not events. Sinks are synchronous and must not block (a counter increment, a
``put_nowait``); a sink that raises is logged and counted (``on_sink_error``, which the
composition root wires to ``gateway_events_dropped_total``), never allowed to fail the write
that already committed.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from gateway.core.model import Event, EventType, Reason, Status, Suppression
from gateway.core.records import EnqueueResult, notices_of
from gateway.core.streams import Scope
from gateway.observe.delegate import StoreDelegate
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from datetime import timedelta

    from gateway.core.model import Delivery, NewMessage
    from gateway.core.ports import Store
    from gateway.core.records import AuditOf, Outcome, RecipientView
    from gateway.core.tenant_policy import PauseCause

log = logging.getLogger("gateway.observe.events")
T = TypeVar("T")

# Deliveries claimed but not yet recorded, remembered for the latency histograms. A claim
# whose outcome never comes back (lease lost, crash) would stay forever: cap the memory.
_CLAIMS_REMEMBERED = 100_000


@dataclass(frozen=True, slots=True)
class MessageAccepted:
    """``enqueue`` committed a message: ``queued`` recipients queued, ``duplicates`` not."""

    tenant: str
    queue_id: str
    queued: int
    duplicates: int
    at: datetime
    stream: str = "transactional"  # ``core.streams.Stream`` (issue 15)


@dataclass(frozen=True, slots=True)
class RecipientChanged:
    """An event row was written for a recipient (or an address, for intake refusals).

    Args:
        event: the row as written, with ``event_id`` filled in when the store returned it.
        status: the recipient's new status when the write set one (outcomes, reports).
        received_at: when the message was accepted, when known (relay outcomes).
        first_attempt: true when this outcome is the recipient's first delivery attempt.
    """

    event: Event
    status: Status | None = None
    received_at: datetime | None = None
    first_attempt: bool = False


@dataclass(frozen=True, slots=True)
class SuppressionAdded:
    suppression: Suppression


@dataclass(frozen=True, slots=True)
class SuppressionRemoved:
    """``count`` suppressions lifted for ``address``; ``tenant`` ``None`` means every tenant."""

    tenant: str | None
    address: str
    count: int
    at: datetime


DomainEvent = MessageAccepted | RecipientChanged | SuppressionAdded | SuppressionRemoved


class EventSink(Protocol):
    """Receives domain events. ``publish`` runs on the hot path: it must not block or await."""

    def publish(self, event: DomainEvent) -> None: ...


class ObservedStore(StoreDelegate):
    """A ``Store`` that publishes domain events after each successful write.

    Every method not defined here is passed on unchanged (``StoreDelegate``, which writes
    each port's methods out). A write that raises publishes nothing.

    Args:
        store: the real store.
        sinks: where events go, in order.
        on_sink_error: called with the failing sink's class name each time a sink raises
            (the event it did not take is lost to that sink); errors of its own are ignored.
    """

    def __init__(
        self,
        store: Store,
        sinks: Iterable[EventSink] = (),
        on_sink_error: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(store)
        self.sinks = list(sinks)
        self.sink_errors = 0
        self.on_sink_error = on_sink_error
        self._claims: OrderedDict[int, tuple[datetime, bool]] = OrderedDict()

    def add_sink(self, sink: EventSink) -> None:
        self.sinks.append(sink)

    def _publish(self, events: Iterable[DomainEvent]) -> None:
        for event in events:
            for sink in self.sinks:
                try:
                    sink.publish(event)
                except Exception as exc:  # a sink must never fail a committed write
                    self.sink_errors += 1
                    name = type(sink).__name__
                    log_event(
                        log, "events.sink_failed", logging.ERROR, sink=name, error=repr(exc)[:300]
                    )
                    if self.on_sink_error is not None:
                        with contextlib.suppress(Exception):  # counting must not fail it either
                            self.on_sink_error(name)

    # --- intake -------------------------------------------------------------------------------

    async def enqueue(
        self,
        message: NewMessage,
        duplicate_window: timedelta,
        *,
        audit: AuditOf | None = None,
    ) -> EnqueueResult:
        result = await self.inner.enqueue(message, duplicate_window, audit=audit)
        self._publish(_accepted(message, result))
        return result

    async def record_event(self, event: Event) -> int:
        event_id = await self.inner.record_event(event)
        self._publish([RecipientChanged(_with_id(event, event_id))])
        return event_id

    # --- suppressions ---------------------------------------------------------------------------

    async def add_suppression(self, suppression: Suppression) -> None:
        await self.inner.add_suppression(suppression)
        self._publish([SuppressionAdded(suppression)])

    async def remove_suppression(self, tenant: str | None, address: str) -> int:
        count = await self.inner.remove_suppression(tenant, address)
        if count:
            self._publish([SuppressionRemoved(tenant, address, count, datetime.now(UTC))])
        return count

    # --- relay ----------------------------------------------------------------------------------

    async def claim_due(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> list[Delivery]:
        deliveries = await self.inner.claim_due(now, limit, owner, lease)
        self._remember_claims(deliveries)
        return deliveries

    async def claim_due_with_content(
        self, now: datetime, limit: int, owner: str, lease: timedelta
    ) -> tuple[list[Delivery], dict[str, bytes | None]]:
        deliveries, contents = await self.inner.claim_due_with_content(now, limit, owner, lease)
        self._remember_claims(deliveries)
        return deliveries, contents

    def _remember_claims(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self._claims[delivery.recipient_id] = (
                delivery.received_at,
                delivery.first_attempt_at is None,
            )
            self._claims.move_to_end(delivery.recipient_id)
        while len(self._claims) > _CLAIMS_REMEMBERED:
            self._claims.popitem(last=False)

    async def record_outcomes(self, outcomes: Sequence[Outcome], owner: str) -> dict[int, int]:
        recorded = await self.inner.record_outcomes(outcomes, owner)
        events: list[DomainEvent] = []
        for outcome in outcomes:
            claim = self._claims.pop(outcome.recipient_id, None)
            event_id = recorded.get(outcome.recipient_id)
            if event_id is None:
                continue  # fenced off: another owner holds the row now; nothing changed
            received_at, first = claim if claim is not None else (None, False)
            events.append(
                RecipientChanged(
                    _with_id(outcome.event, event_id),
                    outcome.status,
                    received_at,
                    first and outcome.event.type in _ATTEMPTS,
                )
            )
            if outcome.suppress is not None:  # the policy's, in the same transaction
                suppression, suppressed = outcome.suppress
                if suppression.event_id is None:
                    suppression = replace(suppression, event_id=event_id)
                events.append(SuppressionAdded(suppression))
                events.append(RecipientChanged(suppressed, Status.SUPPRESSED))
        for notice in notices_of(outcomes, recorded):  # queued in the same transaction
            events.extend(_accepted(notice, EnqueueResult(notice.queue_id, notice.recipients, ())))
        self._publish(events)
        return recorded

    async def update_recipient(
        self, recipient_id: int, status: Status | None, event: Event
    ) -> int:
        event_id = await self.inner.update_recipient(recipient_id, status, event)
        self._publish([RecipientChanged(_with_id(event, event_id), status)])
        return event_id

    # --- admin writes (``store.admin_queries``), which bypass the methods above ------------------

    async def suppress_with_event(
        self,
        suppression: Suppression,
        event: Event,
        *,
        keep_permanent: bool = False,
        audit: AuditOf | None = None,
    ) -> tuple[Suppression, int] | None:
        result = await self.inner.suppress_with_event(
            suppression, event, keep_permanent=keep_permanent, audit=audit
        )
        if result is not None:
            stored, event_id = result
            self._publish(
                [
                    SuppressionAdded(stored),
                    RecipientChanged(_with_id(event, event_id), Status.SUPPRESSED),
                ]
            )
        return result

    async def lift_suppressions(
        self,
        address: str,
        tenant: str | None,
        make_event: Callable[[Suppression], Event],
        *,
        audit: AuditOf | None = None,
        scope: Scope | None = None,
        probation: Callable[[str], timedelta | None] | None = None,
    ) -> list[tuple[Suppression, int]]:
        built: list[Event] = []
        lifted: list[tuple[Suppression, int]] = await self.inner.lift_suppressions(
            address,
            tenant,
            _capturing(make_event, built),
            audit=audit,
            scope=scope,
            probation=probation,
        )
        events: list[DomainEvent] = []
        for (found, event_id), event in zip(lifted, built, strict=False):
            events.append(SuppressionRemoved(found.tenant, address, 1, event.at))
            events.append(RecipientChanged(_with_id(event, event_id)))
        self._publish(events)
        return lifted

    async def set_held(
        self,
        queue_id: str,
        held: bool,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None:
        built: list[Event] = []
        count: int | None = await self.inner.set_held(
            queue_id, held, _capturing(make_event, built), audit=audit
        )
        status = Status.HELD if held else None
        self._publish([RecipientChanged(event, status) for event in built])
        return count

    async def cancel_message(
        self,
        queue_id: str,
        make_event: Callable[[RecipientView], Event],
        *,
        audit: AuditOf | None = None,
    ) -> int | None:
        built: list[Event] = []
        count: int | None = await self.inner.cancel_message(
            queue_id, _capturing(make_event, built), audit=audit
        )
        self._publish([RecipientChanged(event, Status.EXPIRED) for event in built])
        return count

    # --- holds and the tenant pause (issue 15) --------------------------------------------

    async def hold_recipients(
        self,
        queue_id: str,
        until: dict[str, datetime],
        make_event: Callable[[RecipientView], Event],
    ) -> list[RecipientView]:
        built: list[Event] = []
        held = await self.inner.hold_recipients(queue_id, until, _capturing(make_event, built))
        self._publish([RecipientChanged(event, Status.HELD) for event in built])
        return held

    async def hold_leased(
        self,
        owner: str,
        until: dict[int, datetime],
        make_event: Callable[[RecipientView], Event],
    ) -> list[RecipientView]:
        built: list[Event] = []
        held = await self.inner.hold_leased(owner, until, _capturing(make_event, built))
        self._publish([RecipientChanged(event, Status.HELD) for event in built])
        return held

    async def release_held(
        self,
        now: datetime,
        limit: int,
        make_event: Callable[[RecipientView], Event],
        *,
        tenant: str | None = None,
        address: str | None = None,
    ) -> list[RecipientView]:
        built: list[Event] = []
        released = await self.inner.release_held(
            now, limit, _capturing(make_event, built), tenant=tenant, address=address
        )
        self._publish(
            RecipientChanged(event, Status.DEFERRED if view.attempts else Status.QUEUED)
            for view, event in zip(released, built, strict=False)
        )
        return released

    async def expire_held(
        self, now: datetime, limit: int, make_event: Callable[[RecipientView], Event]
    ) -> list[RecipientView]:
        built: list[Event] = []
        expired = await self.inner.expire_held(now, limit, _capturing(make_event, built))
        self._publish([RecipientChanged(event, Status.EXPIRED) for event in built])
        return expired

    async def set_tenant_paused(
        self,
        event: Event,
        *,
        paused: bool,
        delivery: bool,
        cause: PauseCause | None,
        audit: AuditOf | None = None,
    ) -> bool | None:
        changed = await self.inner.set_tenant_paused(
            event, paused=paused, delivery=delivery, cause=cause, audit=audit
        )
        if changed:
            self._publish([RecipientChanged(event)])
        return changed


_ATTEMPTS = frozenset({EventType.SENT, EventType.DEFERRED, EventType.BOUNCED})


def _accepted(message: NewMessage, result: EnqueueResult) -> list[DomainEvent]:
    """What an enqueue that committed tells the sinks: the message, each queued recipient."""
    events: list[DomainEvent] = [
        MessageAccepted(
            message.tenant,
            result.queue_id,
            len(result.queued),
            len(result.duplicates),
            message.received_at,
            message.stream.value,
        )
    ]
    events.extend(
        RecipientChanged(
            Event(
                None,
                message.tenant,
                address,
                EventType.QUEUED,
                message.received_at,
                queue_id=result.queue_id,
                reason=Reason.QUEUED,
            ),
            Status.QUEUED,
        )
        for address in result.queued
    )
    return events


def _capturing(make: Callable[[T], Event], into: list[Event]) -> Callable[[T], Event]:
    """``make``, also keeping what it built (it runs in the store's writer, inside the
    transaction; the list is read only after the write succeeded)."""

    def build(item: T) -> Event:
        event = make(item)
        into.append(event)
        return event

    return build


def _with_id(event: Event, event_id: int) -> Event:
    return event if event.event_id == event_id else replace(event, event_id=event_id)
