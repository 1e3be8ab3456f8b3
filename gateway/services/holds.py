"""Hold instead of refuse, then replay (issue 15 item 2).

Owns: what happens to mail for a suppressed address when its tenant's
``suppressed_action`` is ``hold``: the recipient is accepted (``250``) and kept ``held``
(reason ``suppressed``) until the address is unblocked — then it is released to the relay,
in the order the recipients were queued — or until ``hold_window`` passes — then it ends
``expired`` (reason ``hold_window_exceeded``), with a bounce notice to the sender when the
tenant asks for notices. Does not own: whether an address is suppressed for a message
(``services.checks`` and its stream rules), the rows (``store.policy_queries``), nor an
administrator's hold of a whole message (``admin``, reason ``held_by_admin``).

Callers:

- the intake (``smtp_in.handler``) after the enqueue committed, and the end-of-DATA stream
  re-check: :meth:`HoldKeeper.hold` with the addresses to hold and the suppression that
  applies to each;
- the unblock (API and page): :meth:`HoldKeeper.release` for the address;
- the sweep (:func:`run_sweeper`, a task of the gateway's ``TaskGroup``): releases what an
  unblock committed without releasing (a crash between the two, a suppression that expired)
  and expires what waited past its window, a bounded number of rows per pass.

Crash safety: the hold is written after the message's commit, before the relay is woken; a
crash in between leaves the recipient ``queued``, and the relay's own suppression check
before sending ends it ``suppressed``: never delivered to a suppressed address. A release is
one transaction; a crash after the unblock and before it leaves the rows for the sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from gateway.core.errors import StoreError
from gateway.core.model import Event, EventType, Reason
from gateway.core.notice import FailedRecipient
from gateway.core.ports import Holds, QueueStore, TenantStore
from gateway.core.tenant_policy import PolicyDefaults, ResolvedPolicy, resolve
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from gateway.core.model import Delivery, Suppression, Tenant
    from gateway.core.ports import Clock, Tenants
    from gateway.core.records import RecipientView
    from gateway.services.outcomes import BounceNotifier


log = logging.getLogger("gateway.services.holds")
#: A key of what the relay's suppression check found: (tenant, address[, stream]).
K = TypeVar("K", bound=tuple[str, ...])


class HoldStore(Holds, QueueStore, TenantStore, Protocol):
    """What the holds read and write: held rows, the queue (notices), tenant settings."""


__all__ = ["HoldKeeper", "HoldStore", "SweepSettings", "held_text", "run_sweeper"]


def held_text(suppression: Suppression, until: datetime) -> str:
    """The held event's sentence (English; the page words it in Portuguese first)."""
    return (
        f"Held: the address is blocked ({suppression.reason.value}) since"
        f" {suppression.since:%Y-%m-%d}; it will be sent if unblocked before"
        f" {until:%Y-%m-%d %H:%M} UTC"
    )


@dataclass(frozen=True, slots=True)
class SweepSettings:
    """How the sweep paces itself: ``batch`` rows per transaction, at most ``max_batches``
    of each kind per pass, a pass every ``interval``."""

    batch: int = 200
    max_batches: int = 20
    interval: timedelta = timedelta(seconds=30)


class HoldKeeper:
    """Holds, releases and expires recipients of suppressed addresses.

    Args:
        store: the rows.
        clock: the time.
        defaults: the operator's ``[policy]`` defaults (``hold_window``, …).
        tenants: the tenant directory (each tenant's own ``suppressed_action``).
        notifier: builds the bounce notice of an expired hold (``None``: never).
        on_queued: wakes the relay after a release or a notice was queued.
    """

    def __init__(
        self,
        store: HoldStore,
        clock: Clock,
        defaults: PolicyDefaults,
        tenants: Tenants,
        notifier: BounceNotifier | None = None,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.defaults = defaults
        self.tenants = tenants
        self.notifier = notifier
        self.on_queued = on_queued

    def policy(self, tenant: Tenant) -> ResolvedPolicy:
        """``tenant``'s policy with the operator's defaults applied."""
        return resolve(tenant.policy, self.defaults)

    def holds(self, tenant: Tenant) -> bool:
        """Does ``tenant`` hold (rather than refuse) mail to a suppressed address?"""
        return self.policy(tenant).holds

    async def hold(
        self, tenant: Tenant, queue_id: str, held: Mapping[str, Suppression]
    ) -> list[RecipientView]:
        """Hold the queued recipients of ``queue_id`` named in ``held`` (address -> the
        suppression that applies), each until now + the tenant's ``hold_window``, with a
        ``held`` event (reason ``suppressed``).

        Call it after the message committed and before the relay is woken (the intake, the
        end-of-DATA stream re-check). A recipient already claimed by the relay is left to
        the relay's own suppression check.

        Returns:
            The recipients held.
        """
        if not held:
            return []
        now = self.clock.now()
        until = now + self.policy(tenant).hold_window

        def event(view: RecipientView) -> Event:
            return _held_event(view, held[view.address], now, until)

        done = await self.store.hold_recipients(queue_id, dict.fromkeys(held, until), event)
        for view in done:
            log_event(
                log, "holds.held", queue_id=view.queue_id, tenant=view.tenant, rcpt=view.address
            )
        return done

    async def hold_claimed(
        self, claimed: list[Delivery], found: dict[K, Suppression], owner: str
    ) -> tuple[list[Delivery], dict[K, Suppression]]:
        """The relay's check before sending found ``found`` suppressed among ``claimed``:
        those of tenants that hold are held (by ``owner``, which leases them) rather than
        suppressed. Returns what is left to send and what is left to suppress.

        This is also what makes the intake's hold safe: a recipient the relay claimed
        between the enqueue's commit and the intake's hold is held here.
        """
        if not found:
            return claimed, found
        now = self.clock.now()
        until: dict[int, datetime] = {}
        why: dict[int, Suppression] = {}
        for delivery in claimed:
            suppression = found.get(_key_of(delivery, found))
            if suppression is None:
                continue
            tenant = await self.tenants.tenant(delivery.tenant)
            if self.holds(tenant):
                until[delivery.recipient_id] = now + self.policy(tenant).hold_window
                why[delivery.recipient_id] = suppression
        if not until:
            return claimed, found

        def event(view: RecipientView) -> Event:
            return _held_event(view, why[view.recipient_id], now, until[view.recipient_id])

        try:
            await self.store.hold_leased(owner, until, event)
        except StoreError as exc:  # not sent and not suppressed: the lease runs out
            log_event(log, "holds.hold_failed", logging.ERROR, error=str(exc))
        keep = [d for d in claimed if d.recipient_id not in until]
        held_keys = {_key_of(d, found) for d in claimed if d.recipient_id in until}
        rest = {k: v for k, v in found.items() if k not in held_keys}
        return keep, rest

    async def release(
        self, address: str, tenant: str | None, actor: str = "", limit: int = 10_000
    ) -> list[RecipientView]:
        """Release ``address``'s held recipients (one tenant or every one) once it is no
        longer suppressed: queued again, due now, in the order they were queued, each with a
        ``released`` event (reason ``admin_unblock``). The unblock's caller runs it after
        the unblock committed; what it misses, the sweep releases.
        """
        now = self.clock.now()
        released = await self.store.release_held(
            now, limit, _released_event(now, actor), tenant=tenant, address=address
        )
        if released:
            self.on_queued()
            log_event(log, "holds.released", rcpt=address, tenant=tenant, count=len(released))
        return released

    async def sweep(self, settings: SweepSettings = SweepSettings()) -> tuple[int, int]:
        """One bounded pass: release what is no longer suppressed, expire what waited past
        its window. Returns (released, expired)."""
        released = expired = 0
        for _ in range(settings.max_batches):
            now = self.clock.now()
            done = await self.store.release_held(now, settings.batch, _released_event(now, ""))
            released += len(done)
            if len(done) < settings.batch:
                break
        if released:
            self.on_queued()
        for _ in range(settings.max_batches):
            now = self.clock.now()
            gone = await self.store.expire_held(now, settings.batch, _expired_event(now))
            expired += len(gone)
            await self._notify(gone)
            if len(gone) < settings.batch:
                break
        return released, expired

    async def _notify(self, expired: list[RecipientView]) -> None:
        """Bounce notices to the senders of expired holds, for tenants that ask for them,
        one per message. After the expiry committed: a notice that fails is logged."""
        if self.notifier is None or not expired:
            return
        by_message: dict[str, list[RecipientView]] = {}
        for view in expired:
            by_message.setdefault(view.queue_id, []).append(view)
        for queue_id, views in by_message.items():
            first = views[0]
            try:
                settings = await self.store.tenant_settings(first.tenant)
                if settings is None or not settings.bounce_notice or not first.mail_from:
                    continue
                original = await self.store.load_content(queue_id) or b""
                failed = [
                    FailedRecipient(
                        v.address,
                        "5.7.1",
                        "x-gateway; the address is blocked and was not unblocked within"
                        " the hold window",
                        "",
                    )
                    for v in views
                ]
                notice = self.notifier.build(
                    first.tenant, queue_id, first.mail_from, first.updated_at, failed, original
                )
                if notice is None:
                    continue
                await self.store.enqueue(notice, timedelta(0))
                self.notifier.queued(notice, queue_id, len(failed))
            except StoreError as exc:
                log_event(
                    log, "holds.notice_failed", logging.WARNING, queue_id=queue_id, error=str(exc)
                )


def _key_of(delivery: Delivery, found: Mapping[K, Suppression]) -> K:
    """``delivery``'s key in what ``Store.suppressions_among`` found: (tenant, address), with
    the message's stream after it when the store keys by stream (issue 15 item 3)."""
    if any(len(k) > 2 for k in found):
        return cast("K", (delivery.tenant, delivery.address, getattr(delivery, "stream", None)))
    return cast("K", (delivery.tenant, delivery.address))


def _held_event(
    view: RecipientView, suppression: Suppression, now: datetime, until: datetime
) -> Event:
    return Event(
        view.recipient_id,
        view.tenant,
        view.address,
        EventType.HELD,
        now,
        queue_id=view.queue_id,
        text=held_text(suppression, until),
        reason=Reason.SUPPRESSED,
        details={
            "held_until": until.isoformat(),
            "suppression_reason": suppression.reason.value,
            "suppressed_since": suppression.since.isoformat(),
        },
    )


def _released_event(now: datetime, actor: str) -> Callable[[RecipientView], Event]:
    def event(view: RecipientView) -> Event:
        by = f" by {actor}" if actor else ""
        return Event(
            view.recipient_id,
            view.tenant,
            view.address,
            EventType.RELEASED,
            now,
            queue_id=view.queue_id,
            text=f"Released: the address was unblocked{by}; queued for delivery",
            reason=Reason.ADMIN_UNBLOCK,
        )

    return event


def _expired_event(now: datetime) -> Callable[[RecipientView], Event]:
    def event(view: RecipientView) -> Event:
        return Event(
            view.recipient_id,
            view.tenant,
            view.address,
            EventType.EXPIRED,
            now,
            queue_id=view.queue_id,
            text="Expired: the address was not unblocked within the hold window",
            reason=Reason.HOLD_WINDOW_EXCEEDED,
        )

    return event


async def run_sweeper(
    keeper: HoldKeeper,
    stopping: asyncio.Event,
    settings: SweepSettings = SweepSettings(),
    also: Callable[[], object] | None = None,
) -> None:
    """Sweep until ``stopping`` is set (a task in the gateway's ``TaskGroup``); a store error
    is logged and the next pass tries again.

    Args:
        keeper: the holds.
        stopping: set by the gateway to stop.
        settings: pacing.
        also: another periodic check run after each sweep (an awaitable's factory: the
            tenant pause's judge), so one task paces both.
    """
    while not stopping.is_set():
        try:
            released, expired = await keeper.sweep(settings)
            if released or expired:
                log_event(log, "holds.swept", released=released, expired=expired)
            if also is not None:
                found = also()
                if asyncio.iscoroutine(found):
                    await found
        except StoreError as exc:
            log_event(log, "holds.sweep_failed", logging.WARNING, error=str(exc))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.interval.total_seconds()):
                await stopping.wait()
