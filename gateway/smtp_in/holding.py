"""The intake's side of issue 15 items 2 and 4: hold instead of refuse, and a paused tenant.

Owns: the three small decisions the SMTP handler makes for them — answer ``MAIL`` of a
paused tenant with ``451 4.7.1`` (:func:`paused_reply`), accept a suppressed recipient of a
tenant that holds (:func:`hold_or_refuse`: the ``250`` now, the hold after the commit), and
hold those recipients once the message committed (:func:`hold_after_enqueue`). Does not own:
the hold itself (``services.holds``) or the suppression check (``services.checks``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from gateway.core import replies
from gateway.observe.logging import log_event
from gateway.services.checks import Verdict

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.core.model import Suppression, Tenant
    from gateway.core.records import EnqueueResult
    from gateway.services.holds import HoldKeeper

log = logging.getLogger("gateway.smtp_in.holding")


def paused_reply(tenant: Tenant | None) -> str | None:
    """``451 4.7.1`` for a paused tenant's new transaction (its queued mail is kept)."""
    if tenant is None or not tenant.policy.paused:
        return None
    log_event(log, "smtp.tenant_paused", logging.WARNING, tenant=tenant.name)
    return str(replies.TENANT_PAUSED)


def hold_or_refuse(
    holds: HoldKeeper | None,
    tenant: Tenant | None,
    verdict: Verdict,
    held: dict[str, Suppression],
) -> Verdict:
    """``verdict``, or an acceptance when it refused a suppressed address and ``tenant``
    holds such mail: the address and its suppression go into ``held`` (the transaction's),
    to be held once the message is queued."""
    found = verdict.suppression
    if holds is None or tenant is None or found is None or not holds.holds(tenant):
        return verdict
    held[verdict.address] = found
    return Verdict(verdict.address)


async def hold_after_enqueue(
    holds: HoldKeeper | None,
    tenant: Tenant | None,
    result: EnqueueResult,
    held: dict[str, Suppression],
) -> None:
    """Hold the queued recipients of ``held`` (after the commit, before the relay is woken).

    A failure here is logged, never turned into a refusal: the message is committed, and the
    relay's own suppression check before sending ends such a recipient ``suppressed``.
    """
    if holds is None or tenant is None or not held:
        return
    wanted = {address: held[address] for address in result.queued if address in held}
    try:
        await holds.hold(tenant, result.queue_id, wanted)
    except Exception as exc:  # committed: nothing here may turn the 250 into a 451
        log_event(log, "smtp.hold_failed", logging.ERROR, queue_id=result.queue_id, error=repr(exc))


class _Holding(Protocol):
    tenant: Tenant | None
    held: dict[str, Suppression]


def holder(holds: HoldKeeper | None, state: _Holding) -> Callable[[Verdict], bool]:
    """For the end-of-``DATA`` stream re-check (``smtp_in.streams.for_stream``): keep a
    recipient suppressed for the header's stream to be held, when its tenant holds."""

    def hold(verdict: Verdict) -> bool:
        return hold_or_refuse(holds, state.tenant, verdict, state.held).accepted

    return hold
