"""Unattributed feedback-loop reports: ``GET /api/v1/feedback-reports``.

Owns: the JSON form of a report that reached ``bounce.fbl_address`` and could not be
attributed to a recipient (``core.feedback.UnattributedReport``), its models (and so its
part of the OpenAPI document) and its pagination by id. Admin tokens only: a report that
names no tenant's message belongs to no tenant (a tenant token answers 403 ``admin_only``,
``admin.scope``). Does not own: receiving or attributing reports (``smtp_in.feedback_loop``)
or their retention (``services.retention``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from msgspec import Meta
from starlette.requests import Request

from gateway.admin import params
from gateway.admin import request_models as rq
from gateway.admin import response_models as rm
from gateway.admin.deps import deps_of
from gateway.admin.operations import json_route
from gateway.core.feedback import UnattributedReport

Why = Literal["no_match", "bad_token", "unknown_recipient", "not_a_report"]


class FeedbackReportsQuery(rq.Query):
    limit: rq.Limit = 50
    before_id: (
        Annotated[int, Meta(ge=1, description="Reports with a lower id (next page)")] | None
    ) = None

    sentences: ClassVar[dict[str, str]] = {
        "limit": f"limit must be an integer from 1 to {rq.MAX_LIMIT}",
        "before_id": "before_id must be a positive integer (a report's id)",
    }


class FeedbackReport(rm.Model):
    """A feedback-loop report kept because it named no recipient of ours."""

    id: int
    received_at: str
    feedback_type: str
    reporter: str
    source_ip: str
    original_mail_from: str
    original_rcpt_to: str
    original_message_id: str
    arrival_date: str
    why: Why
    size: int


class FeedbackReportPage(rm.Model):
    items: list[FeedbackReport]
    next_before_id: int | None


def report_model(report: UnattributedReport) -> FeedbackReport:
    return FeedbackReport(
        id=report.id or 0,
        received_at=report.received_at.isoformat(),
        feedback_type=report.feedback_type,
        reporter=report.reporter,
        source_ip=report.source_ip,
        original_mail_from=report.original_mail_from,
        original_rcpt_to=report.original_rcpt_to,
        original_message_id=report.original_message_id,
        arrival_date=report.arrival_date,
        why=report.why.value,
        size=report.size,
    )


@json_route(
    "Feedback-loop reports (bounce.fbl_address) that could not be attributed to a recipient,"
    " newest first; kept 30 days, never used to suppress anybody",
    FeedbackReportPage,
    query=FeedbackReportsQuery,
    errors=(422,),
)
async def list_feedback_reports(request: Request) -> FeedbackReportPage:
    """Unattributed reports newest first; ``?before_id=`` pages on."""
    q = params.query_of(request, FeedbackReportsQuery)
    found = await deps_of(request).store.feedback_reports(q.limit + 1, q.before_id)
    page = found[: q.limit]
    more = len(found) > q.limit and page
    return FeedbackReportPage(
        items=[report_model(r) for r in page],
        next_before_id=page[-1].id if more else None,
    )
