"""The tenant pause (issue 15 item 4): automatic on a bounce or complaint storm, or by hand.

Owns: judging each tenant's bounce and complaint rates over its sliding window
(``core.tenant_policy.pause_verdict`` over the store's ``outcome_counts``), pausing a tenant
whose rates are over its thresholds, and the manual pause and resume (API and page). A
pause is one store write with its ``tenant_paused`` event (and the admin audit entry when an
administrator made it): the events log carries it to the webhooks, the metrics sink counts
it, the tenant directory's counter moves so every process sees it within a second. Does
not own: what a paused tenant may not do — the intake answers ``451 4.7.1``
(``smtp_in.handler``), the relay's claim skips its recipients while ``pause_delivery``
(``store``) — nor the alert (``config/prometheus/alerts.yml``).

A tenant paused stays paused until resumed: the judge never resumes (the rates that caused a
pause only fall once mail flows again). Resuming starts the window afresh: the outcomes
before the resume no longer count (``resumed_at``), or the next pass would pause again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.core.model import Event, EventType, Reason
from gateway.core.tenant_policy import (
    PauseCause,
    PolicyDefaults,
    SuppressedAction,
    pause_verdict,
    resolve,
)
from gateway.observe.logging import log_event

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from gateway.config import PolicyConfig
    from gateway.core.model import Tenant
    from gateway.core.ports import Clock, Holds
    from gateway.core.records import AuditOf
    from gateway.services.tenants import TenantDirectory

log = logging.getLogger("gateway.services.pause")

__all__ = ["PAUSED_SENTENCE", "PauseResult", "TenantPauser", "policy_defaults"]

#: The sentence of the ``451 4.7.1`` a paused tenant's new mail gets (``core.replies``).
PAUSED_SENTENCE = "The account is paused for review; please contact the gateway's operator"


def policy_defaults(config: PolicyConfig) -> PolicyDefaults:
    """The operator's ``[policy]`` defaults as ``core.tenant_policy`` takes them."""
    return PolicyDefaults(
        suppressed_action=SuppressedAction(config.suppressed_action),
        hold_window=config.hold_window,
        pause_bounce_rate=config.pause_bounce_rate,
        pause_complaint_rate=config.pause_complaint_rate,
        pause_min_messages=config.pause_min_messages,
        pause_window=config.pause_window,
        pause_delivery=config.pause_delivery,
    )


_REASON = {
    PauseCause.BOUNCE_RATE: Reason.BOUNCE_RATE,
    PauseCause.COMPLAINT_RATE: Reason.COMPLAINT_RATE,
    PauseCause.MANUAL: Reason.PAUSED_BY_ADMIN,
}


@dataclass(frozen=True, slots=True)
class PauseResult:
    """What a pause or resume did: ``changed`` (``False``: it already was so), or ``None``
    in ``found`` for a tenant that does not exist."""

    found: bool
    changed: bool


class TenantPauser:
    """Pauses and resumes tenants.

    Args:
        store: the pause rows and the outcome counts.
        clock: the time.
        defaults: the operator's defaults (thresholds, ``pause_delivery``).
        tenants: the tenant directory (the judge's list of tenants and their settings).
        on_change: called after a pause or resume committed (this process's directory
            reloads; the relay wakes on a resume).
    """

    def __init__(
        self,
        store: Holds,
        clock: Clock,
        defaults: PolicyDefaults,
        tenants: TenantDirectory | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.defaults = defaults
        self.tenants = tenants
        self.on_change = on_change

    async def pause(
        self,
        tenant: Tenant,
        cause: PauseCause,
        note: str = "",
        *,
        audit: AuditOf | None = None,
    ) -> PauseResult:
        """Pause ``tenant`` (``note``: why, in an administrator's words, or the rates)."""
        policy = resolve(tenant.policy, self.defaults)
        event = _event(tenant.name, EventType.TENANT_PAUSED, _REASON[cause], self.clock.now(), note)
        done = await self.store.set_tenant_paused(
            event, paused=True, delivery=policy.pause_delivery, cause=cause, audit=audit
        )
        if done:
            log_event(
                log, "tenant.paused", logging.WARNING, tenant=tenant.name, cause=cause, note=note
            )
            self._changed()
        return PauseResult(done is not None, bool(done))

    async def resume(
        self, name: str, note: str = "", *, audit: AuditOf | None = None
    ) -> PauseResult:
        """Resume tenant ``name``: new mail is accepted again, its queue delivered."""
        event = _event(
            name, EventType.TENANT_RESUMED, Reason.RESUMED_BY_ADMIN, self.clock.now(), note
        )
        done = await self.store.set_tenant_paused(
            event, paused=False, delivery=False, cause=None, audit=audit
        )
        if done:
            log_event(log, "tenant.resumed", tenant=name, note=note)
            self._changed()
        return PauseResult(done is not None, bool(done))

    async def judge(self, tenant: Tenant) -> PauseCause | None:
        """Pause ``tenant`` when its rates over its window (since its last resume, if that
        is later) are over its thresholds.

        Returns:
            The cause when this call paused it.
        """
        policy = resolve(tenant.policy, self.defaults)
        if policy.paused:
            return None
        now = self.clock.now()
        since = now - policy.pause_window
        resumed_at = tenant.policy.resumed_at
        if resumed_at is not None and resumed_at > since:
            since = resumed_at
        counts = await self.store.outcome_counts(tenant.name, since)
        verdict = pause_verdict(counts, policy)
        if verdict.cause is None:
            return None
        result = await self.pause(
            tenant, verdict.cause, f"Paused automatically: {verdict.sentence()}"
        )
        return verdict.cause if result.changed else None

    async def judge_all(self) -> list[str]:
        """One pass of the judge over every tenant of the directory; the tenants paused."""
        if self.tenants is None:
            return []
        snapshot = await self.tenants.snapshot()
        paused = []
        for name, settings in sorted(snapshot.settings.items()):
            if await self.judge(settings.tenant) is not None:
                paused.append(name)
        return paused

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _event(tenant: str, kind: EventType, reason: Reason, at: datetime, note: str) -> Event:
    return Event(None, tenant, "", kind, at, text=note[:500], reason=reason)
