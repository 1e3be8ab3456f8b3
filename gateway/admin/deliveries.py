"""Webhook delivery history: ``GET /api/v1/webhooks/deliveries``.

Owns: the JSON form of an outbox row (state, attempts, next try, last error, the payload
as sent) and its cursor pagination. Does not own: the outbox (``store.sqlite_outbox``) or
delivering (``gateway.observe.webhooks``). The signing secret is never shown here: it is not part
of the row.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.admin import params
from gateway.admin.deps import deps_of
from gateway.admin.errors import invalid
from gateway.admin.views import iso
from gateway.store.sqlite_outbox import DELIVERED, FAILED, PENDING, WebhookRecord

STATES = (PENDING, DELIVERED, FAILED)


def delivery_json(row: WebhookRecord) -> dict[str, Any]:
    try:
        body: Any = json.loads(row.body) if row.body else None
    except ValueError:  # written by us, so never; but a history page must not fail on it
        body = None
    return {
        "id": row.id,
        "tenant": row.tenant,
        "type": row.type,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_at) if row.state == PENDING else None,
        "delivered_at": iso(row.delivered_at),
        "last_error": row.last_error or None,
        "payload": body,
    }


async def list_deliveries(request: Request) -> JSONResponse:
    """Outbox rows newest first; ``?tenant=``, ``?state=pending|delivered|failed``."""
    q = request.query_params
    tenant = q.get("tenant", "").strip() or None
    state = q.get("state", "").strip() or None
    if state is not None and state not in STATES:
        raise invalid(f"state must be one of: {', '.join(STATES)}")
    before = params.decode_cursor(q.get("cursor"))
    if before is not None and not (
        isinstance(before, list)
        and len(before) == 2
        and isinstance(before[0], int | float)
        and isinstance(before[1], str)
    ):
        raise invalid("cursor is not one this API returned")
    limit = params.limit_of(request)
    rows = await deps_of(request).store.webhook_deliveries(
        tenant, state, limit + 1, (float(before[0]), before[1]) if before else None
    )
    page = rows[:limit]
    cursor = (
        params.encode_cursor([page[-1].created_at.timestamp(), page[-1].id])
        if len(rows) > limit and page
        else None
    )
    return JSONResponse({"items": [delivery_json(r) for r in page], "next_cursor": cursor})
