"""JSON handlers: recipients, messages, queue control, address checks, send-test, stats.

Owns: reading a request, calling the store or the checker once or twice, and shaping the
answer. Each handler declares what it takes and answers (``admin.operations``): the OpenAPI
document is generated from those declarations. Does not own: authentication
(``admin.auth``, applied by the route table in ``admin.app``), the queries
(``store.admin_queries``) or the models (``admin.request_models``, ``admin.response_models``,
filled by ``admin.views``). Suppressions and tenants have their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request

from gateway.admin import params, scope
from gateway.admin import request_models as rq
from gateway.admin import response_models as rm
from gateway.admin.deps import deps_of, principal_of
from gateway.admin.errors import ApiError, invalid, not_found
from gateway.admin.no_record import no_record
from gateway.admin.operations import json_route
from gateway.admin.views import (
    envelope_fields,
    event_model,
    iso,
    normalise_lang,
    recipient_detail_model,
    recipient_report,
)
from gateway.core.ids import new_queue_id
from gateway.core.model import Category, Event, EventType, NewMessage, Reason, Status, Tenant
from gateway.core.ports import RecipientView
from gateway.core.records import AuditEntry, MessageFilter, hashed_address
from gateway.core.routing import provider_of

PROVIDERS = tuple(rm.Providers.__struct_fields__)


def audit_entry(request: Request, action: str, target: str, **detail: Any) -> AuditEntry:
    """The audit entry of the request's principal, for a store write that records it in the
    change's own transaction (the ``audit=`` of the admin writes, issue 13)."""
    deps = deps_of(request)
    return AuditEntry(deps.clock.now(), principal_of(request).actor, action, target, detail)


# --- recipients -------------------------------------------------------------------------


@json_route(
    "An address's current status, suppression, last events and guidance",
    rm.RecipientReport,
    query=rq.RecipientQuery,
    errors=(404, 422),
)
@scope.tenant_aware
async def get_recipient(request: Request) -> rm.RecipientReport:
    deps = deps_of(request)
    address = params.address_key(request.path_params["address"])
    q = params.query_of(request, rq.RecipientQuery)
    lang = normalise_lang(q.lang)
    tenant = scope.tenant_filter(request, q.tenant)
    report = await recipient_report(deps.store, address, tenant, lang, deps.clock.now())
    if report is None:  # the application never handed a message over (issue 16 item 1)
        return (await no_record(deps, address, tenant, lang)).as_model()
    return report.as_model()


# --- messages ---------------------------------------------------------------------------


@json_route(
    "Messages, newest first (cursor-paginated)",
    rm.MessagePage,
    query=rq.MessagesQuery,
    errors=(422,),
)
@scope.tenant_aware
async def list_messages(request: Request) -> rm.MessagePage:
    deps = deps_of(request)
    q = params.query_of(request, rq.MessagesQuery)
    where = MessageFilter(
        recipient=params.address_key(q.recipient) if q.recipient else None,
        status=q.status and q.status.value,
        category=q.category and q.category.value,
        tenant=scope.tenant_filter(request, q.tenant),
        since=params.parse_time("since", q.since),
        until=params.parse_time("until", q.until),
        message_id=params.message_id_key(q.message_id),
    )
    limit = q.limit
    after = params.decode_cursor(q.cursor)
    if after is not None and not (
        isinstance(after, list)
        and len(after) == 2
        and params.cursor_time(after[0])
        and isinstance(after[1], str)
    ):
        raise params.bad_cursor()
    rows = await deps.store.list_messages(where, limit + 1, None if after is None else tuple(after))
    page, more = rows[:limit], len(rows) > limit
    summary = await deps.store.recipients_summary([r.queue_id for r in page])
    items = [
        rm.Message(
            **envelope_fields(row),
            recipients=[
                rm.MessageRecipient(
                    address=a, status=Status(s), category=Category(c) if c else None
                )
                for a, s, c in summary.get(row.queue_id, [])
            ],
        )
        for row in page
    ]
    cursor = None
    if more:
        last = page[-1]
        cursor = params.encode_cursor([last.received_at.timestamp(), last.queue_id])
    return rm.MessagePage(items=items, next_cursor=cursor)


@json_route(
    "A message: envelope, subject, recipients with attempts", rm.MessageDetail, errors=(404,)
)
@scope.tenant_aware
async def get_message(request: Request) -> rm.MessageDetail:
    deps = deps_of(request)
    queue_id = request.path_params["queue_id"]
    row = await deps.store.message(queue_id)
    if row is None:
        raise not_found(f"No message {queue_id}")
    scope.ensure_visible(request, row.tenant, f"No message {queue_id}")
    recipients = await deps.store.recipients_of(queue_id)
    events = await deps.store.events_of_message(queue_id)
    by_recipient: dict[int | None, list[Event]] = {}
    for event in events:
        by_recipient.setdefault(event.recipient_id, []).append(event)
    return rm.MessageDetail(
        **envelope_fields(row),
        recipients=[
            recipient_detail_model(r, by_recipient.get(r.recipient_id, [])) for r in recipients
        ],
        other_events=[event_model(e) for e in by_recipient.get(None, [])],
    )


# --- queue control ----------------------------------------------------------------------


def _admin_event(
    request: Request, view: RecipientView, kind: EventType, reason: Reason, text: str
) -> Event:
    deps = deps_of(request)
    return Event(
        view.recipient_id,
        view.tenant,
        view.address,
        kind,
        deps.clock.now(),
        queue_id=view.queue_id,
        reason=reason,
        text=text,
        details={"actor": principal_of(request).actor},
    )


def _audit_count(
    request: Request, action: str, queue_id: str, *, none_changed: bool = False
) -> Callable[[int | None], AuditEntry | None]:
    """The audit entry of a hold, release or delete, built from the store's count in the
    write's transaction: none for a missing message, nor for a count of 0 unless
    ``none_changed`` (a release of a message with nothing pending is still recorded)."""

    def build(count: int | None) -> AuditEntry | None:
        if count is None or not (count or none_changed):
            return None
        return audit_entry(request, action, queue_id, recipients=count)

    return build


async def _own_message(request: Request, queue_id: str) -> None:
    """A tenant token acts only on its tenant's messages: 404, as for a missing one,
    before any write (``admin.scope`` rule 3)."""
    if scope.is_admin(request):
        return
    row = await deps_of(request).store.message(queue_id)
    if row is None or not scope.visible(request, row.tenant):
        raise not_found(f"No message {queue_id}")


@scope.tenant_aware
@json_route("Hold a queued message (the relay skips it)", rm.Held, errors=(404, 409))
async def hold_message(request: Request) -> rm.Held:
    queue_id = request.path_params["queue_id"]
    await _own_message(request, queue_id)
    actor = principal_of(request).actor
    count = await deps_of(request).store.set_held(
        queue_id,
        True,
        lambda v: _admin_event(
            request, v, EventType.HELD, Reason.HELD_BY_ADMIN, f"Held by administrator {actor}"
        ),
        audit=_audit_count(request, "message.hold", queue_id),
    )
    if count is None:
        raise not_found(f"No message {queue_id}")
    if count == 0:
        raise ApiError(409, "nothing_pending", f"Message {queue_id} has no recipient to hold")
    return rm.Held(queue_id=queue_id, held=True, recipients=count)


@scope.tenant_aware
@json_route("Release a held message", rm.Held, errors=(404,))
async def release_message(request: Request) -> rm.Held:
    queue_id = request.path_params["queue_id"]
    await _own_message(request, queue_id)
    actor = principal_of(request).actor
    count = await deps_of(request).store.set_held(
        queue_id,
        False,
        lambda v: _admin_event(
            request,
            v,
            EventType.RELEASED,
            Reason.RELEASED_BY_ADMIN,
            f"Released by administrator {actor}",
        ),
        audit=_audit_count(request, "message.release", queue_id, none_changed=True),
    )
    if count is None:
        raise not_found(f"No message {queue_id}")
    deps = deps_of(request)
    if deps.on_queued is not None and count:
        deps.on_queued()
    return rm.Held(queue_id=queue_id, held=False, recipients=count)


@json_route(
    "Delete a queued message: pending recipients end as expired, history kept",
    rm.Deleted,
    errors=(404, 409),
)
@scope.tenant_aware
async def delete_message(request: Request) -> rm.Deleted:
    queue_id = request.path_params["queue_id"]
    await _own_message(request, queue_id)
    actor = principal_of(request).actor
    count = await deps_of(request).store.cancel_message(
        queue_id,
        lambda v: _admin_event(
            request,
            v,
            EventType.EXPIRED,
            Reason.DELETED_BY_ADMIN,
            f"Deleted from the queue by administrator {actor}",
        ),
        audit=_audit_count(request, "message.delete", queue_id),
    )
    if count is None:
        raise not_found(f"No message {queue_id}")
    if count == 0:
        raise ApiError(409, "nothing_pending", f"Message {queue_id} has no pending recipient")
    return rm.Deleted(queue_id=queue_id, deleted=True, recipients=count)


# --- addresses --------------------------------------------------------------------------


@json_route(
    "Run the intake checks and the typo suggestion, as a tenant (default: the intake's"
    " smtp.default_tenant)",
    rm.AddressVerdict,
    body=rq.AddressCheck,
    errors=(404,),
)
@scope.tenant_aware
async def check_address(request: Request) -> rm.AddressVerdict:
    """Any string is an address to check: one that does not parse (an empty one too) is
    answered 200 with the intake's verdict (reason ``invalid``), as ``RCPT TO`` would be."""
    deps = deps_of(request)
    body = await params.body_of(request, rq.AddressCheck)
    address = body.address
    # Without a tenant, check as the SMTP intake does for a trusted client: as
    # smtp.default_tenant, with its stored settings, or with none when it is not stored yet.
    default = deps.config.smtp.default_tenant
    tenant_name = scope.tenant_filter(request, body.tenant) or default
    tenant = await deps.store.get_tenant(tenant_name)
    if tenant is None and tenant_name != default:
        raise not_found(f"No tenant {tenant_name}")
    tenant = tenant or Tenant(tenant_name)
    verdict = await deps.checker.check(address.strip(), tenant)
    suggestion = verdict.suggestion
    if suggestion and "@" not in suggestion and "@" in verdict.address:
        suggestion = f"{verdict.address.rpartition('@')[0]}@{suggestion}"
    reply = verdict.reply
    return rm.AddressVerdict(
        address=verdict.address,
        tenant=tenant.name,
        accepted=verdict.accepted,
        reason=verdict.reason,
        reply=None if reply is None else str(reply),
        reply_code=None if reply is None else reply.code,
        enhanced=None if reply is None else reply.enhanced,
        suggestion=suggestion,
        warning=verdict.warning or None,
    )


@json_route("Erase what the gateway holds on an address (LGPD)", rm.Erasure, errors=(422,))
async def erase_address(request: Request) -> rm.Erasure:
    deps = deps_of(request)
    address = params.address_key(request.path_params["address"])
    key = hashed_address(address)
    # The erasure and its audit entry in one transaction (issue 13).
    erased = await deps.store.erase_address(
        address,
        deps.clock.now(),
        audit=lambda done: audit_entry(request, "address.erase", key, events=done.events_deleted),
    )
    return rm.Erasure(
        address_hash=key,
        events_deleted=erased.events_deleted,
        recipients_hashed=erased.recipients_hashed,
        recipients_cancelled=erased.recipients_cancelled,
        suppressions_kept_hashed=erased.suppressions_hashed,
        contents_deleted=erased.contents_deleted,
    )


# --- send-test and stats ----------------------------------------------------------------


@json_route(
    "Queue a small test message for the default tenant",
    rm.SendTestQueued,
    status=202,
    body=rq.SendTest,
    errors=(404,),
)
@scope.tenant_aware
async def send_test(request: Request) -> rm.SendTestQueued:
    deps = deps_of(request)
    body = await params.body_of(request, rq.SendTest)
    to = body.to
    if not to.strip():
        raise invalid("to is required (a string)")
    tenant_name = scope.tenant_filter(request, body.tenant) or deps.config.smtp.default_tenant
    tenant = await deps.store.get_tenant(tenant_name)
    if tenant is None:
        raise not_found(f"No tenant {tenant_name}")
    verdict = await deps.checker.check(to.strip(), tenant)
    if not verdict.accepted:
        raise ApiError(422, "recipient_refused", str(verdict.reply))
    now = deps.clock.now()
    queue_id = new_queue_id()
    host = deps.config.smtp.hostname or "localhost"
    sender = f"postmaster@{host}"
    subject = f"Gateway test message {queue_id}"
    content = (
        f"From: Gateway test <{sender}>\r\n"
        f"To: <{verdict.address}>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {format_datetime(now)}\r\n"
        f"Message-ID: <{queue_id}.test@{host}>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        "This is a test message sent through the mail gateway's admin API.\r\n"
        f"Queue id: {queue_id}\r\n"
    ).encode()
    message = NewMessage(
        queue_id=queue_id,
        tenant=tenant.name,
        mail_from=sender,
        recipients=(verdict.address,),
        content=content,
        message_id=f"<{queue_id}.test@{host}>",
        subject=subject,
        received_at=now,
        client_address="admin-api",
    )
    # The message and its audit entry commit in one transaction (issue 13).
    result = await deps.store.enqueue(
        message,
        deps.config.smtp.duplicate_window,
        audit=lambda done: audit_entry(request, "send_test", done.queue_id, to=verdict.address),
    )
    if deps.on_queued is not None:
        deps.on_queued()
    return rm.SendTestQueued(queue_id=result.queue_id, to=verdict.address)


@json_route(
    "Destination sites the relay holds: state (suspended after connection failures, probing,"
    " active), since when unreachable, the recipients waiting, the last error",
    rm.Destinations,
)
async def list_destinations(request: Request) -> rm.Destinations:
    """Sites needing attention first: suspended, then probing, then throttled, then the
    busiest."""
    views = await deps_of(request).destinations()
    order = {"suspended": 0, "probing": 1, "active": 2}
    ranked = sorted(views, key=lambda v: (order[v.state], not v.throttled, -v.queued, v.site))
    return rm.Destinations(
        destinations=[
            rm.Destination(
                site=v.site,
                provider=v.provider,
                state=v.state,
                since=iso(v.since),
                until=iso(v.until),
                queued=v.queued,
                active=v.active,
                connections=v.connections,
                throttled=v.throttled,
                last_error=v.last_error,
            )
            for v in ranked
        ]
    )


@json_route(
    "Counts by status and category, per tenant and per destination provider",
    rm.Stats,
    query=rq.StatsQuery,
    errors=(422,),
)
@scope.tenant_aware
async def stats(request: Request) -> rm.Stats:
    deps = deps_of(request)
    now = deps.clock.now()
    since = params.parse_time("since", params.query_of(request, rq.StatsQuery).since)
    since = since or now - timedelta(hours=24)
    tenants: dict[str, dict[str, dict[str, int]]] = {}
    providers: dict[str, dict[str, dict[str, int]]] = {
        p: {"events": {}, "categories": {}, "mx_hosts": {}} for p in PROVIDERS
    }
    for tenant, kind, category, host, count in await deps.store.event_counts(since):
        if not scope.visible(request, tenant):  # a tenant token counts only its own rows
            continue
        t = tenants.setdefault(tenant, {"events": {}, "categories": {}, "recipients": {}})
        _add(t["events"], kind, count)
        if category:
            _add(t["categories"], category, count)
        if host:  # grouped by the MX host that answered, not by the recipient's domain
            p = providers[provider_of(host)]
            _add(p["events"], kind, count)
            _add(p["mx_hosts"], host.lower().rstrip("."), count)
            if category:
                _add(p["categories"], category, count)
    for tenant, status, _category, count in await deps.store.recipient_counts(since):
        if not scope.visible(request, tenant):
            continue
        t = tenants.setdefault(tenant, {"events": {}, "categories": {}, "recipients": {}})
        _add(t["recipients"], status, count)
    return rm.Stats(
        since=since.isoformat(),
        until=now.isoformat(),
        tenants={
            name: rm.TenantCounts(
                events=t["events"], categories=t["categories"], recipients=t["recipients"]
            )
            for name, t in tenants.items()
        },
        providers=rm.Providers(
            **{
                name: rm.ProviderCounts(
                    events=p["events"], categories=p["categories"], mx_hosts=p["mx_hosts"]
                )
                for name, p in providers.items()
            }
        ),
    )


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


@json_route("The audit trail of admin actions", rm.AuditPage, query=rq.AuditQuery, errors=(422,))
async def list_audit(request: Request) -> rm.AuditPage:
    deps = deps_of(request)
    q = params.query_of(request, rq.AuditQuery)
    before = params.decode_cursor(q.cursor)
    if before is not None and not params.cursor_int(before):
        raise params.bad_cursor()
    limit = q.limit
    rows = await deps.store.list_audit(limit + 1, before)
    page = rows[:limit]
    items = [
        rm.AuditEntry(
            id=e.entry_id,
            at=e.at.isoformat(),
            actor=e.actor,
            action=e.action,
            target=e.target,
            detail=e.detail,
        )
        for e in page
    ]
    cursor = params.encode_cursor(page[-1].entry_id) if len(rows) > limit and page else None
    return rm.AuditPage(items=items, next_cursor=cursor)
