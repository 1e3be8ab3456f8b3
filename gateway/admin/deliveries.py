"""Webhook delivery history: ``GET /api/v1/webhooks/deliveries``.

Owns: the JSON form of an outbox row (state, attempts, next try, last error, the payload
as sent) and its cursor pagination. Does not own: the outbox (``store.sqlite_outbox``) or
delivering (``gateway.observe.webhooks``). The signing secret is never shown here: it is not part
of the row.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request

from gateway.admin import params, scope
from gateway.admin import request_models as rq
from gateway.admin import response_models as rm
from gateway.admin.deps import deps_of
from gateway.admin.operations import json_route
from gateway.admin.views import iso
from gateway.core.records import PENDING, WebhookRecord


def delivery_model(row: WebhookRecord) -> rm.WebhookDelivery:
    try:
        body = msgspec.json.decode(row.body, type=rm.WebhookPayload) if row.body else None
    except msgspec.DecodeError:  # written by us, so never; but a history page must not fail
        body = None
    return rm.WebhookDelivery(
        id=row.id,
        tenant=row.tenant,
        type=row.type,
        state=row.state,  # type: ignore[arg-type]  # one of the outbox's three states
        attempts=row.attempts,
        created_at=row.created_at.isoformat(),
        next_attempt_at=iso(row.next_at) if row.state == PENDING else None,
        delivered_at=iso(row.delivered_at),
        last_error=row.last_error or None,
        payload=body,
    )


@json_route(
    "Webhook delivery history, newest first: state, attempts, next try, last error, payload"
    " (cursor-paginated)",
    rm.WebhookDeliveryPage,
    query=rq.DeliveriesQuery,
    errors=(422,),
)
@scope.tenant_aware
async def list_deliveries(request: Request) -> rm.WebhookDeliveryPage:
    """Outbox rows newest first; ``?tenant=``, ``?state=pending|delivered|failed``."""
    q = params.query_of(request, rq.DeliveriesQuery)
    before = params.decode_cursor(q.cursor)
    if before is not None and not (
        isinstance(before, list)
        and len(before) == 2
        and params.cursor_time(before[0])
        and isinstance(before[1], str)
    ):
        raise params.bad_cursor()
    rows = await deps_of(request).store.webhook_deliveries(
        scope.tenant_filter(request, q.tenant),
        q.state,
        q.limit + 1,
        (float(before[0]), before[1]) if before else None,
    )
    page = rows[: q.limit]
    cursor = (
        params.encode_cursor([page[-1].created_at.timestamp(), page[-1].id])
        if len(rows) > q.limit and page
        else None
    )
    return rm.WebhookDeliveryPage(items=[delivery_model(r) for r in page], next_cursor=cursor)
