"""JSON handlers: recipients, messages, queue control, address checks, send-test, stats.

Owns: reading a request, calling the store or the checker once or twice, and shaping the
answer. Does not own: authentication (``admin.auth``, applied by the route table in
``admin.app``), the queries (``store.sqlite_admin``) or the JSON shapes (``admin.views``).
Suppressions and tenants have their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.admin import params
from gateway.admin.deps import deps_of, principal_of
from gateway.admin.errors import ApiError, invalid, not_found, read_json
from gateway.admin.views import (
    event_json,
    message_json,
    normalise_lang,
    recipient_report,
    recipient_view_json,
)
from gateway.core.ids import new_queue_id
from gateway.core.model import Category, Event, EventType, NewMessage, Reason, Status, Tenant
from gateway.core.ports import RecipientView
from gateway.core.routing import provider_of
from gateway.store.sqlite_admin import AuditEntry, MessageFilter, hashed_address

PROVIDERS = ("gmail", "outlook", "yahoo", "uol", "terra", "other")
_ATTEMPTS = frozenset({EventType.SENT, EventType.DEFERRED, EventType.BOUNCED})


def audit_entry(request: Request, action: str, target: str, **detail: Any) -> AuditEntry:
    """The audit entry of the request's principal, for a store write that records it in the
    change's own transaction (the ``audit=`` of the admin writes, issue 13)."""
    deps = deps_of(request)
    return AuditEntry(deps.clock.now(), principal_of(request).actor, action, target, detail)


# --- recipients -------------------------------------------------------------------------


async def get_recipient(request: Request) -> JSONResponse:
    deps = deps_of(request)
    address = params.address_key(request.path_params["address"])
    tenant = request.query_params.get("tenant") or None
    lang = normalise_lang(request.query_params.get("lang"))
    report = await recipient_report(deps.store, address, tenant, lang, deps.clock.now())
    if report is None:
        raise ApiError(404, "unknown_address", f"The gateway has no record of {address}")
    return JSONResponse(report.as_json())


# --- messages ---------------------------------------------------------------------------


async def list_messages(request: Request) -> JSONResponse:
    deps = deps_of(request)
    q = request.query_params
    recipient = q.get("recipient")
    where = MessageFilter(
        recipient=params.address_key(recipient) if recipient else None,
        status=(s := params.enum_of(Status, "status", q.get("status"))) and s.value,
        category=(c := params.enum_of(Category, "category", q.get("category"))) and c.value,
        tenant=q.get("tenant") or None,
        since=params.parse_time("since", q.get("since")),
        until=params.parse_time("until", q.get("until")),
    )
    limit = params.limit_of(request)
    after = params.decode_cursor(q.get("cursor"))
    if after is not None and not (
        isinstance(after, list)
        and len(after) == 2
        and isinstance(after[0], (int, float))
        and isinstance(after[1], str)
    ):
        raise invalid("cursor is not one this API returned")
    rows = await deps.store.list_messages(where, limit + 1, None if after is None else tuple(after))
    page, more = rows[:limit], len(rows) > limit
    summary = await deps.store.recipients_summary([r.queue_id for r in page])
    items = []
    for row in page:
        item = message_json(row)
        item["recipients"] = [
            {"address": a, "status": s, "category": c} for a, s, c in summary.get(row.queue_id, [])
        ]
        items.append(item)
    cursor = None
    if more:
        last = page[-1]
        cursor = params.encode_cursor([last.received_at.timestamp(), last.queue_id])
    return JSONResponse({"items": items, "next_cursor": cursor})


async def get_message(request: Request) -> JSONResponse:
    deps = deps_of(request)
    queue_id = request.path_params["queue_id"]
    row = await deps.store.message(queue_id)
    if row is None:
        raise not_found(f"No message {queue_id}")
    recipients = await deps.store.recipients_of(queue_id)
    events = await deps.store.events_of_message(queue_id)
    by_recipient: dict[int | None, list[Event]] = {}
    for event in events:
        by_recipient.setdefault(event.recipient_id, []).append(event)
    body = message_json(row)
    body["recipients"] = [
        recipient_view_json(r)
        | {
            "attempts_detail": [
                event_json(e) for e in by_recipient.get(r.recipient_id, []) if e.type in _ATTEMPTS
            ],
            "events": [event_json(e) for e in by_recipient.get(r.recipient_id, [])],
        }
        for r in recipients
    ]
    body["other_events"] = [event_json(e) for e in by_recipient.get(None, [])]
    return JSONResponse(body)


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


async def hold_message(request: Request) -> JSONResponse:
    queue_id = request.path_params["queue_id"]
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
    return JSONResponse({"queue_id": queue_id, "held": True, "recipients": count})


async def release_message(request: Request) -> JSONResponse:
    queue_id = request.path_params["queue_id"]
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
    return JSONResponse({"queue_id": queue_id, "held": False, "recipients": count})


async def delete_message(request: Request) -> JSONResponse:
    queue_id = request.path_params["queue_id"]
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
    return JSONResponse({"queue_id": queue_id, "deleted": True, "recipients": count})


# --- addresses --------------------------------------------------------------------------


async def check_address(request: Request) -> JSONResponse:
    deps = deps_of(request)
    body = await read_json(request)
    address = body.get("address")
    if not isinstance(address, str) or not address.strip():
        raise invalid("address is required (a string)")
    # Without a tenant, check as the SMTP intake does for a trusted client: as
    # smtp.default_tenant, with its stored settings, or with none when it is not stored yet.
    default = deps.config.smtp.default_tenant
    tenant_name = params.optional_str(body, "tenant", 200) or default
    tenant = await deps.store.get_tenant(tenant_name)
    if tenant is None and tenant_name != default:
        raise not_found(f"No tenant {tenant_name}")
    tenant = tenant or Tenant(tenant_name)
    verdict = await deps.checker.check(address.strip(), tenant)
    suggestion = verdict.suggestion
    if suggestion and "@" not in suggestion and "@" in verdict.address:
        suggestion = f"{verdict.address.rpartition('@')[0]}@{suggestion}"
    reply = verdict.reply
    return JSONResponse(
        {
            "address": verdict.address,
            "tenant": tenant.name,
            "accepted": verdict.accepted,
            "reason": None if verdict.reason is None else verdict.reason.value,
            "reply": None if reply is None else str(reply),
            "reply_code": None if reply is None else reply.code,
            "enhanced": None if reply is None else reply.enhanced,
            "suggestion": suggestion,
            "warning": verdict.warning or None,
        }
    )


async def erase_address(request: Request) -> JSONResponse:
    deps = deps_of(request)
    address = params.address_key(request.path_params["address"])
    key = hashed_address(address)
    # The erasure and its audit entry in one transaction (issue 13).
    erased = await deps.store.erase_address(
        address,
        deps.clock.now(),
        audit=lambda done: audit_entry(request, "address.erase", key, events=done.events_deleted),
    )
    return JSONResponse(
        {
            "address_hash": key,
            "events_deleted": erased.events_deleted,
            "recipients_hashed": erased.recipients_hashed,
            "recipients_cancelled": erased.recipients_cancelled,
            "suppressions_kept_hashed": erased.suppressions_hashed,
            "contents_deleted": erased.contents_deleted,
        }
    )


# --- send-test and stats ----------------------------------------------------------------


async def send_test(request: Request) -> JSONResponse:
    deps = deps_of(request)
    body = await read_json(request)
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise invalid("to is required (a string)")
    tenant_name = params.optional_str(body, "tenant", 200) or deps.config.smtp.default_tenant
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
    return JSONResponse({"queue_id": result.queue_id, "to": verdict.address}, status_code=202)


async def stats(request: Request) -> JSONResponse:
    deps = deps_of(request)
    now = deps.clock.now()
    since = params.parse_time("since", request.query_params.get("since"))
    since = since or now - timedelta(hours=24)
    tenants: dict[str, dict[str, dict[str, int]]] = {}
    providers: dict[str, dict[str, dict[str, int]]] = {
        p: {"events": {}, "categories": {}, "mx_hosts": {}} for p in PROVIDERS
    }
    for tenant, kind, category, host, count in await deps.store.event_counts(since):
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
        t = tenants.setdefault(tenant, {"events": {}, "categories": {}, "recipients": {}})
        _add(t["recipients"], status, count)
    return JSONResponse(
        {
            "since": since.isoformat(),
            "until": now.isoformat(),
            "tenants": tenants,
            "providers": providers,
        }
    )


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


async def list_audit(request: Request) -> JSONResponse:
    deps = deps_of(request)
    before = params.decode_cursor(request.query_params.get("cursor"))
    if before is not None and not isinstance(before, int):
        raise invalid("cursor is not one this API returned")
    limit = params.limit_of(request)
    rows = await deps.store.list_audit(limit + 1, before)
    page = rows[:limit]
    items = [
        {
            "id": e.entry_id,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "detail": e.detail,
        }
        for e in page
    ]
    cursor = params.encode_cursor(page[-1].entry_id) if len(rows) > limit and page else None
    return JSONResponse({"items": items, "next_cursor": cursor})
