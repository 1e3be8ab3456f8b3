"""The message search page: by recipient, Message-ID or time range, each message with its
per-recipient timeline (issue 16 item 5).

Owns: the page ``/messages`` (linked from the address view). Does not own: the query
(``store.admin_queries.list_messages``, the same one ``GET /api/v1/messages`` runs, which
takes ``message_id`` too), the events (``History.events_of_message``) or the page frame
(``admin.pages``).

A tenant token sees only its own tenant's messages (``admin.scope``). A bad parameter (an
unreadable time, an address longer than an address can be) is shown on the page, as the
support page shows a bad address; the JSON API answers 422 for the same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import params, scope
from gateway.admin import request_models as rq
from gateway.admin.deps import deps_of
from gateway.admin.errors import ApiError
from gateway.admin.operations import described
from gateway.admin.pages import NOT_LOGGED_IN, _lang, _to_login, _who, render
from gateway.admin.support_texts import support_text
from gateway.admin.views import reply_text
from gateway.core.model import Event
from gateway.core.records import MessageFilter, MessageRow, RecipientView

PAGE_SIZE = 20


#: What the page reads. No field is constrained in the document: the page shows a value it
#: cannot read (a time that is not one, a cursor from elsewhere) as a sentence, as the
#: support page shows a bad address, and never answers it with an error status.
_TIME = Annotated[
    str, Meta(description="An ISO 8601 time (a naive one is UTC) or a UNIX timestamp")
]


class SearchQuery(rq.Query):
    recipient: str | None = None
    message_id: str | None = None
    since: _TIME | None = None
    until: _TIME | None = None
    tenant: str | None = None
    cursor: Annotated[str, Meta(description="The next page's cursor, unchanged")] | None = None
    lang: rq.LangParam | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """One recipient of a message and its events, oldest first."""

    recipient: RecipientView
    events: list[tuple[Event, str]]  # (event, its reply as one line)


@dataclass(frozen=True, slots=True)
class Found:
    message: MessageRow
    timelines: list[Timeline]
    other: list[tuple[Event, str]]  # events of no recipient row (a refusal, a report)


async def _found(request: Request, row: MessageRow) -> Found:
    store = deps_of(request).store
    events = await store.events_of_message(row.queue_id)
    by_recipient: dict[int | None, list[tuple[Event, str]]] = {}
    for event in events:
        by_recipient.setdefault(event.recipient_id, []).append((event, reply_text(event)))
    timelines = [
        Timeline(r, by_recipient.get(r.recipient_id, []))
        for r in await store.recipients_of(row.queue_id)
    ]
    return Found(row, timelines, by_recipient.get(None, []))


def _filter(request: Request, q: SearchQuery) -> MessageFilter:
    """The store's filter of the page's query, scoped to the caller's tenant.

    Raises:
        ApiError: 422 for an unreadable time or address; 404 for a tenant token naming
            another tenant.
    """
    return MessageFilter(
        recipient=params.address_key(q.recipient) if q.recipient else None,
        tenant=scope.tenant_filter(request, q.tenant),
        since=params.parse_time("since", q.since),
        until=params.parse_time("until", q.until),
        message_id=params.message_id_key(q.message_id),
    )


@described("Message search: by recipient, Message-ID or time range, with each recipient's"
           " timeline", query=SearchQuery, errors=(404,), see_other=NOT_LOGGED_IN)  # fmt: skip
async def messages_page(request: Request) -> Response:
    lang = _lang(request)
    principal, session = await _who(request)
    if principal is None:
        return _to_login(request, lang)
    x = support_text(lang)
    q_raw = {k: request.query_params.get(k, "") for k in ("recipient", "message_id", "since",
                                                            "until", "tenant")}  # fmt: skip
    context: dict[str, Any] = {"x": x, "q": q_raw, "error": "", "found": [], "next_query": ""}
    asked = any(v.strip() for v in q_raw.values())
    if asked:
        try:
            q = params.query_of(request, SearchQuery)
            where = _filter(request, q)
            after = params.decode_cursor(q.cursor)
            if after is not None and not (
                isinstance(after, list) and len(after) == 2 and params.cursor_time(after[0])
            ):
                raise params.bad_cursor()
        except ApiError as exc:
            if exc.status == 404:
                raise
            context["error"] = exc.message
        else:
            store = deps_of(request).store
            rows = await store.list_messages(
                where, PAGE_SIZE + 1, None if after is None else (after[0], str(after[1]))
            )
            context["found"] = [await _found(request, row) for row in rows[:PAGE_SIZE]]
            if len(rows) > PAGE_SIZE:
                last = rows[PAGE_SIZE - 1]
                cursor = params.encode_cursor([last.received_at.timestamp(), last.queue_id])
                context["next_query"] = urlencode(dict(request.query_params) | {"cursor": cursor})
    context["asked"] = asked
    return render(request, lang, "messages.html", x["messages"], session=session, **context)
