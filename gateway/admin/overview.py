"""The overview: today and the last 7 days at a glance (issue 16 item 4).

Owns: ``GET /api/v1/overview`` and the page ``/overview``: events per day by type, failures
by category, per tenant (today, 7 days, waiting and held now), the destination domains and
providers that fail most, and what is held or waiting, with small charts drawn on the
server (``admin.charts``, ``templates/overview.html``). Does not own: the aggregates
(``store.support_queries``: one bounded query each), the page frame (``admin.pages``).

Both answer a tenant token with its own tenant only (``admin.scope``); an admin sees every
tenant, or one with ``?tenant=``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import charts, params, scope
from gateway.admin import request_models as rq
from gateway.admin import response_models as rm
from gateway.admin.deps import AdminDeps, deps_of
from gateway.admin.operations import described, json_route
from gateway.admin.pages import NOT_LOGGED_IN, _lang, _to_login, _who, render
from gateway.admin.support_texts import support_text
from gateway.core.activity import DAYS, OverviewCounts, day_starts
from gateway.core.model import Category
from gateway.core.routing import provider_of
from gateway.core.status_text import FOLDED_LABELS, folded_category

#: The event types the day chart stacks, bottom first.
STACKED = ("sent", "queued", "deferred", "bounced", "expired", "rejected")
WAITING = ("queued", "deferred", "held")


class OverviewQuery(rq.Query):
    tenant: rq.Tenant | None = None
    lang: rq.LangParam | None = None


class OverviewDay(rm.Model):
    day: Annotated[str, Meta(extra_json_schema={"format": "date"})]
    events: Annotated[rm.Counts, Meta(description="Event type -> count")]


class OverviewTenant(rm.Model):
    tenant: str
    today: Annotated[rm.Counts, Meta(description="Event type -> count, today (UTC)")]
    week: Annotated[rm.Counts, Meta(description="Event type -> count, the last 7 days")]
    waiting: Annotated[rm.Counts, Meta(description="queued, deferred, held -> recipients now")]
    oldest_waiting: rm.Time | None
    categories: Annotated[rm.Counts, Meta(description="Failures of the 7 days by category")] = (
        msgspec.field(default_factory=dict)
    )


class Failing(rm.Model):
    name: str
    failures: int


class Overview(rm.Model):
    """Today and the last 7 UTC days, per tenant and in total."""

    tenant: Annotated[str | None, Meta(description="null: every tenant")]
    since: rm.Time
    until: rm.Time
    days: Annotated[list[OverviewDay], Meta(description="Today first")]
    categories: Annotated[
        rm.Counts, Meta(description="Failures of the 7 days by category (bounced, deferred…)")
    ]
    tenants: list[OverviewTenant]
    failing_domains: list[Failing]
    failing_providers: list[Failing]
    waiting: Annotated[rm.Counts, Meta(description="queued, deferred, held -> recipients now")]


@dataclass(slots=True)
class _Tenant:
    today: dict[str, int] = field(default_factory=dict)
    week: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)
    oldest: datetime | None = None
    categories: dict[str, int] = field(default_factory=dict)


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


@dataclass(slots=True)
class OverviewData:
    """The overview, folded from the store's aggregates."""

    tenant: str | None
    starts: list[datetime]
    now: datetime
    days: list[dict[str, int]]
    categories: dict[str, int]
    tenants: dict[str, _Tenant]
    failing_domains: list[tuple[str, int]]
    failing_providers: list[tuple[str, int]]
    waiting: dict[str, int]

    def as_model(self) -> Overview:
        return Overview(
            tenant=self.tenant,
            since=self.starts[-1].isoformat(),
            until=self.now.isoformat(),
            days=[
                OverviewDay(day=s.date().isoformat(), events=d)
                for s, d in zip(self.starts, self.days, strict=True)
            ],
            categories=self.categories,
            tenants=[
                OverviewTenant(
                    tenant=name,
                    today=t.today,
                    week=t.week,
                    waiting=t.waiting,
                    oldest_waiting=None if t.oldest is None else t.oldest.isoformat(),
                    categories=t.categories,
                )
                for name, t in sorted(self.tenants.items())
            ],
            failing_domains=[Failing(name=n, failures=c) for n, c in self.failing_domains],
            failing_providers=[Failing(name=n, failures=c) for n, c in self.failing_providers],
            waiting=self.waiting,
        )


def fold(
    tenant: str | None, starts: list[datetime], now: datetime, c: OverviewCounts
) -> OverviewData:
    """The store's aggregates as the overview shows them."""
    days: list[dict[str, int]] = [{} for _ in starts]
    categories: dict[str, int] = {}
    tenants: dict[str, _Tenant] = {}
    for name, day, kind, n in c.events:
        if not 0 <= day < len(starts):
            continue
        _add(days[day], kind, n)
        t = tenants.setdefault(name, _Tenant())
        _add(t.week, kind, n)
        if day == 0:
            _add(t.today, kind, n)
    for name, _, _, category, n in c.failures:
        _add(categories, category, n)
        _add(tenants.setdefault(name, _Tenant()).categories, category, n)
    waiting: dict[str, int] = {}
    for name, status, n, oldest in c.waiting:
        t = tenants.setdefault(name, _Tenant())
        _add(t.waiting, status, n)
        _add(waiting, status, n)
        t.oldest = oldest if t.oldest is None else min(t.oldest, oldest)
    providers: dict[str, int] = {}
    for host, n in c.failing_hosts:
        _add(providers, provider_of(host), n)
    ranked = sorted(providers.items(), key=lambda p: (-p[1], p[0]))
    return OverviewData(
        tenant, starts, now, days, categories, tenants, c.failing_domains, ranked, waiting
    )


async def overview_data(deps: AdminDeps, tenant: str | None) -> OverviewData:
    now = deps.clock.now()
    starts = day_starts(now, DAYS)
    return fold(tenant, starts, now, await deps.store.overview(tenant, starts))


@json_route(
    "Today and the last 7 days: events by type and day, failures by category, per tenant,"
    " the destination domains and providers failing most, what is held or waiting",
    Overview,
    query=OverviewQuery,
    errors=(404, 422),
)
@scope.tenant_aware
async def get_overview(request: Request) -> Overview:
    q = params.query_of(request, OverviewQuery)
    tenant = scope.tenant_filter(request, q.tenant)
    return (await overview_data(deps_of(request), tenant)).as_model()


# --- the page ------------------------------------------------------------------------------


def _category_label(category: str, lang: str) -> str:
    try:
        word = folded_category(Category(category))
    except ValueError:
        word = ""
    return FOLDED_LABELS[word]["pt-BR" if lang != "en" else "en"] if word else category


def _words(categories: dict[str, int], lang: str) -> list[tuple[str, int]]:
    """Failures by the four words support uses (``core.status_text``), most first."""
    words: dict[str, int] = {}
    for category, n in categories.items():
        _add(words, _category_label(category, lang), n)
    return sorted(words.items(), key=lambda p: (-p[1], p[0]))


def page_charts(data: OverviewData, lang: str) -> list[charts.Chart]:
    """The overview's charts: events per day, failures by category, failing domains and
    providers."""
    x = support_text(lang)
    columns = [
        (s.strftime("%d/%m") if lang != "en" else s.strftime("%m-%d"), d)
        for s, d in reversed(list(zip(data.starts, data.days, strict=True)))
    ]
    series = [(k, x["t_" + k]) for k in STACKED]
    ranked = _words(data.categories, lang)
    return [
        charts.stacked_columns("per-day", x["per_day"], columns, series),
        charts.ranking(
            "categories",
            x["by_category"],
            ranked,
            "bounced",
        ),
        charts.ranking("domains", x["failing_domains"], data.failing_domains, "deferred"),
        charts.ranking("providers", x["failing_providers"], data.failing_providers, "expired"),
    ]


@described("The overview page: today and the last 7 days", query=OverviewQuery,
           errors=(404, 422), see_other=NOT_LOGGED_IN)  # fmt: skip
async def overview_page(request: Request) -> Response:
    lang = _lang(request)
    principal, session = await _who(request)
    if principal is None:
        return _to_login(request, lang)
    q = params.query_of(request, OverviewQuery)
    tenant = scope.tenant_filter(request, q.tenant)
    data = await overview_data(deps_of(request), tenant)
    x = support_text(lang)
    context: dict[str, Any] = {
        "x": x,
        "data": data,
        "tenant": q.tenant or "",
        "charts": page_charts(data, lang),
        "stacked": STACKED,
        "waiting_kinds": WAITING,
        "tenant_rows": [
            (name, t, _words(t.categories, lang)) for name, t in sorted(data.tenants.items())
        ],
        "oldest_day": data.starts[-1],
        "day": timedelta(days=1),
    }
    return render(request, lang, "overview.html", x["overview"], session=session, **context)
