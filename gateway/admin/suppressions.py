"""JSON handlers for the suppression list: list, manual block, unblock.

Owns: the unblock's rules (a required reason, the actor and time recorded as an
``unsuppressed`` event that the auto-block policy reads as a counter reset) and the
manual block (reason ``manual`` with a note, recorded as a ``suppressed`` event). Does not
own: the queries (``store.admin_queries``) or deciding automatic blocks (``core.policy``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from starlette.requests import Request

from gateway.admin import params, scope
from gateway.admin import request_models as rq
from gateway.admin import response_models as rm
from gateway.admin.api import audit_entry
from gateway.admin.deps import AdminDeps, deps_of, principal_of
from gateway.admin.errors import ApiError, invalid, not_found
from gateway.admin.operations import json_route
from gateway.admin.request_models import MAX_REASON
from gateway.admin.views import suppression_model
from gateway.core.model import Event, EventType, Reason, Suppression, SuppressionReason
from gateway.core.records import AuditEntry
from gateway.core.streams import Scope

__all__ = ["MAX_REASON", "add_suppression", "delete_suppression", "list_suppressions", "unblock"]


@json_route(
    "The suppression list (filters, cursor-paginated)",
    rm.SuppressionPage,
    query=rq.SuppressionsQuery,
    errors=(422,),
)
@scope.tenant_aware
async def list_suppressions(request: Request) -> rm.SuppressionPage:
    deps = deps_of(request)
    q = params.query_of(request, rq.SuppressionsQuery)
    after = params.decode_cursor(q.cursor)
    if after is not None and not isinstance(after, str):
        raise params.bad_cursor()
    tenant = scope.tenant_filter(request, q.tenant)
    rows = await deps.store.list_suppressions(tenant, q.reason, q.limit + 1, after or "")
    page = rows[: q.limit]
    cursor = None
    if len(rows) > q.limit and page:
        last = page[-1]
        cursor = params.encode_cursor(f"{last.tenant} {last.address} {last.scope.value}")
    return rm.SuppressionPage(items=[suppression_model(s) for s in page], next_cursor=cursor)


@json_route(
    "Block an address by hand (reason manual)",
    rm.Suppression,
    status=201,
    body=rq.ManualBlock,
    errors=(404,),
)
@scope.tenant_aware
async def add_suppression(request: Request) -> rm.Suppression:
    """``POST /api/v1/suppressions``: block an address by hand (reason ``manual``)."""
    deps = deps_of(request)
    body = await params.body_of(request, rq.ManualBlock)
    address = params.valid_address(body.address)
    tenant = scope.tenant_filter(request, body.tenant) or deps.config.smtp.default_tenant
    note = body.note or ""
    expires = params.parse_time("expires", body.expires)
    if await deps.store.get_tenant(tenant) is None:
        raise not_found(f"No tenant {tenant}")
    now = deps.clock.now()
    if expires is not None and expires <= now:
        raise invalid("expires must be in the future")
    actor = principal_of(request).actor
    block_scope = Scope(body.scope)
    event = Event(
        None,
        tenant,
        address,
        EventType.SUPPRESSED,
        now,
        reason=Reason.MANUAL,
        text=f"Blocked by administrator {actor}: {note}"[:2000],
        details={"actor": actor, "note": note, "scope": block_scope.value},
    )
    # The suppression, its event and the audit entry in one transaction (issue 13).
    entry = audit_entry(
        request, "suppression.add", f"{tenant} {address}", note=note, scope=block_scope.value
    )
    stored = await deps.store.suppress_with_event(
        Suppression(
            tenant, address, SuppressionReason.MANUAL, now, expires, None, note, block_scope
        ),
        event,
        audit=lambda _: entry,
    )
    assert stored is not None  # keep_permanent is off: always written
    return suppression_model(stored[0])


@json_route(
    "Unblock an address: reason required; recorded as an unsuppressed event",
    rm.Unblocked,
    query=rq.UnblockQuery,
    body=rq.Unblock,
    body_required=False,
    errors=(404, 422),
)
@scope.tenant_aware
async def delete_suppression(request: Request) -> rm.Unblocked:
    """``DELETE /api/v1/suppressions/{address}``: the unblock (``reason`` required)."""
    deps = deps_of(request)
    address = params.address_key(request.path_params["address"])
    body = await params.body_of(request, rq.Unblock)
    q = params.query_of(request, rq.UnblockQuery)
    reason = body.reason or q.reason
    if not reason or not reason.strip():
        raise invalid("reason is required (e.g. a ticket number), in the body or as ?reason=")
    reason = reason.strip()[:MAX_REASON]
    tenant = scope.tenant_filter(request, q.tenant or body.tenant)
    actor = principal_of(request).actor
    now = deps.clock.now()
    lifted = await unblock(
        deps,
        actor,
        address,
        tenant or None,
        reason,
        request,
        block_scope=None if q.scope is None else Scope(q.scope),
    )
    if not lifted:
        where = f" in tenant {tenant}" if tenant else ""
        raise ApiError(404, "not_suppressed", f"{address} is not suppressed{where}")
    # The probations the unblock started, as stored (issue 15).
    started = await deps.store.probations(address, tenant or None, deps.clock.now())
    ends = {p.tenant: p.until.isoformat() for p in started}
    return _unblocked(address, actor, now, reason, lifted, ends)


async def unblock(
    deps: AdminDeps,
    actor: str,
    address: str,
    tenant: str | None,
    reason: str,
    request: Request | None = None,
    *,
    block_scope: Scope | None = None,
) -> list[tuple[Suppression, int]]:
    """Lift an address's suppressions (one tenant or all), one ``unsuppressed`` event each.

    The event carries the actor and the reason; the auto-block policy reads it as a reset
    of the failure counter (``outcomes._past``). With ``request``, the ``suppression.remove``
    audit entry of its principal is written in the same transaction when anything was
    lifted (issue 13). ``block_scope`` lifts only that scope's suppression (issue 15).
    Each lift starts the tenant's probation (``probation_lengths``), in the same
    transaction: its first blocking failure before the end blocks the address again.
    """
    now = deps.clock.now()
    lengths = await probation_lengths(deps, tenant)

    def audit_of(lifted: list[tuple[Suppression, int]]) -> AuditEntry | None:
        if request is None or not lifted:
            return None
        return audit_entry(
            request, "suppression.remove", address, reason=reason, tenants=len(lifted)
        )

    def unblock_event(found: Suppression) -> Event:
        return Event(
            None,
            found.tenant,
            address,
            EventType.UNSUPPRESSED,
            now,
            reason=Reason.ADMIN_UNBLOCK,
            text=f"Unblocked by administrator {actor}: {reason}"[:2000],
            details={
                "actor": actor,
                "ticket": reason,
                "was": found.reason.value,
                "scope": found.scope.value,
                "probation_until": probation_end(lengths, found.tenant, now) or "",
            },
        )

    lifted = await deps.store.lift_suppressions(
        address,
        tenant,
        unblock_event,
        audit=audit_of,
        scope=block_scope,
        probation=lambda name: lengths.get(name, deps.config.policy.probation),
    )
    if lifted and deps.holds is not None:
        # Its held recipients go to the relay now, in the order they were queued (issue 15;
        # the hold sweep releases them if this process stops before).
        await deps.holds.release(address, tenant, actor)
    return lifted


async def probation_lengths(deps: AdminDeps, tenant: str | None) -> dict[str, timedelta]:
    """Each tenant's probation length (its own, else ``[policy] probation``), for one
    tenant or every tenant."""
    default = deps.config.policy.probation
    if tenant is not None:
        found = await deps.store.tenant_settings(tenant)
        own = None if found is None else found.streams.probation
        return {tenant: own or default}
    return {
        s.tenant.name: s.streams.probation or default
        for s in await deps.store.list_tenant_settings()
    }


def probation_end(lengths: dict[str, timedelta], tenant: str, now: datetime) -> str | None:
    """The end of the probation an unblock at ``now`` starts in ``tenant`` (ISO 8601)."""
    length = lengths.get(tenant)
    return None if not length else (now + length).isoformat()


def _unblocked(
    address: str,
    actor: str,
    now: datetime,
    reason: str,
    lifted: list[tuple[Suppression, int]],
    ends: dict[str, str],
) -> rm.Unblocked:
    return rm.Unblocked(
        address=address,
        actor=actor,
        at=now.isoformat(),
        reason=reason,
        lifted=[
            rm.Lifted(
                tenant=s.tenant,
                was=s.reason,
                since=s.since.isoformat(),
                event_id=e,
                scope=s.scope,
                probation_until=ends.get(s.tenant),
            )
            for s, e in lifted
        ],
        probation_until=max(ends.values(), default=None),
    )
