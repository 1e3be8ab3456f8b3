"""The answer for an address with no record: what to check in the application, beside the
tenant's sending activity and the gateway's own check of the address (issue 16 item 1).

Owns: building that answer for the API (``GET /api/v1/recipients/{address}`` with ``status:
"no_record"``) and for the support page, and the tenant's activity as both show it. Does
not own: deciding there is no record (``admin.views.recipient_report`` answers ``None``),
the texts (``core.no_record``, ``core.tenant_texts``), the queries
(``store.support_queries``) or the intake's checks (``services.checks``).

The address check runs the intake's checklist without holding any quota (syntax, a known
typo domain, MX, the tenant's suppressions): the same verdict ``POST
/api/v1/addresses/check`` gives, so support sees at once an address the application could
never have sent to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.admin import response_models as rm
from gateway.admin.customer_texts import words_for
from gateway.core.activity import TenantActivity, day_starts
from gateway.core.model import Tenant
from gateway.core.no_record import STATUS, NoRecordText, no_record_text
from gateway.core.tenant_texts import customer_message

if TYPE_CHECKING:
    from gateway.admin.deps import AdminDeps


async def activity_of(deps: AdminDeps, tenant: str | None) -> TenantActivity:
    """The tenant's (or every tenant's) activity over the last 7 UTC days."""
    return await deps.store.tenant_activity(tenant, day_starts(deps.clock.now()))


def activity_model(tenant: str | None, activity: TenantActivity) -> rm.TenantActivity:
    return rm.TenantActivity(
        tenant=tenant,
        last_accepted_at=None
        if activity.last_accepted_at is None
        else activity.last_accepted_at.isoformat(),
        today=activity.today,
        per_day=[
            rm.DayActivity(day=d.day.date().isoformat(), accepted=d.accepted, refused=d.refused)
            for d in activity.days
        ],
    )


async def address_verdict(deps: AdminDeps, address: str, tenant: str | None) -> rm.AddressVerdict:
    """The intake's verdict on ``address`` for ``tenant`` (default: ``smtp.default_tenant``),
    counting no quota: what ``POST /api/v1/addresses/check`` answers."""
    name = tenant or deps.config.smtp.default_tenant
    found = await deps.store.get_tenant(name)
    verdict = await deps.checker.check(address, found or Tenant(name))
    suggestion = verdict.suggestion
    if suggestion and "@" not in suggestion and "@" in verdict.address:
        suggestion = f"{verdict.address.rpartition('@')[0]}@{suggestion}"
    reply = verdict.reply
    return rm.AddressVerdict(
        address=verdict.address,
        tenant=name,
        accepted=verdict.accepted,
        reason=verdict.reason,
        reply=None if reply is None else str(reply),
        reply_code=None if reply is None else reply.code,
        enhanced=None if reply is None else reply.enhanced,
        suggestion=suggestion,
        warning=verdict.warning or None,
    )


@dataclass(frozen=True, slots=True)
class NoRecord:
    """Everything the API and the page show for an address with no record."""

    address: str
    tenant: str | None
    lang: rm.Lang
    text: NoRecordText
    customer_message: str
    activity: TenantActivity
    check: rm.AddressVerdict
    now: datetime

    def as_model(self) -> rm.RecipientReport:
        return rm.RecipientReport(
            address=self.address,
            tenant=self.tenant,
            status=STATUS,
            category=None,
            category_label=None,
            reason=None,
            since=None,
            guidance=rm.Guidance(
                lang=self.lang,
                title=self.text.title,
                what_to_do=self.text.what_to_do,
                customer_message=self.customer_message,
                checks=[
                    rm.GuidanceCheck(key=c.key, title=c.title, detail=c.detail)
                    for c in self.text.checks
                ],
            ),
            recipient=None,
            rejection=None,
            suppression=None,
            suppressions=[],
            events=[],
            possible_typo=None,
            tenant_activity=activity_model(self.tenant, self.activity),
            address_check=self.check,
        )


async def no_record(deps: AdminDeps, address: str, tenant: str | None, lang: rm.Lang) -> NoRecord:
    """The no-record answer for ``address`` (canonical, or the text as typed).

    Args:
        deps: the admin's dependencies.
        address: the address searched for.
        tenant: the tenant searched in (already scoped to the caller), or ``None``.
        lang: ``"pt-BR"`` or ``"en"``.
    """
    text = no_record_text(lang)
    check = await address_verdict(deps, address, tenant)
    # Without a tenant, the texts of the tenant the address is checked as (the default).
    words = await words_for(deps.store, tenant or deps.config.smtp.default_tenant, lang)
    message = customer_message(
        text.customer_message,
        (STATUS,),
        lang,
        words,
        address=address,
        suggestion=check.suggestion,
    )
    activity = await activity_of(deps, tenant)
    return NoRecord(address, tenant, lang, text, message, activity, check, deps.clock.now())
