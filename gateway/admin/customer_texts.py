"""A tenant's details in the customer messages: the API that edits them, and applying them
to an address's report (issue 16 item 3).

Owns: ``GET /api/v1/tenants/{name}/texts`` and ``PUT /api/v1/tenants/{name}/texts/{lang}``
(audited as ``tenant.texts``), and filling a report's customer message with the tenant's
details, the address on file and a typo's suggested address. Does not own: the placeholder
syntax and its checks (``core.tenant_texts``), the shipped texts (``core.status_text``) or
storing the texts (``store.support_queries``).

A tenant token sees and (with write access) edits only its own tenant's texts
(``admin.scope``); another tenant answers 404 whether it exists or not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, ClassVar, Protocol, TypeVar

import msgspec
from msgspec import Meta
from starlette.requests import Request

from gateway.admin import params, scope
from gateway.admin import request_models as rq
from gateway.admin import response_models as rm
from gateway.admin.deps import deps_of, principal_of
from gateway.admin.errors import ApiError, not_found
from gateway.admin.operations import json_route
from gateway.core.records import AuditEntry
from gateway.core.status_text import LANGS, text_keys
from gateway.core.tenant_texts import (
    MAX_DETAIL,
    MAX_TEMPLATE,
    MESSAGE,
    TemplateError,
    TenantWords,
    check_texts,
    customer_message,
)

if TYPE_CHECKING:
    from gateway.core.model import Category, Event, Reason, Status, Suppression
    from gateway.core.ports import RecipientView, Store
    from gateway.core.status_text import Guidance

Template = Annotated[
    str,
    Meta(
        max_length=MAX_TEMPLATE,
        description="Text with the placeholders {company}, {support}, {sender}, {address},"
        " {suggestion}; any other brace is refused",
    ),
]
Detail = Annotated[str, Meta(max_length=MAX_DETAIL, pattern=r"^[^\x00-\x1f{}]*$")]


class TenantTextsBody(rq.Body, forbid_unknown_fields=True):
    """A tenant's texts in one language; the whole set is replaced (``{}``: back to the
    shipped texts)."""

    company_name: Detail = ""
    support_channel: Detail = ""
    sender_addresses: Annotated[
        list[Annotated[str, Meta(max_length=320)]],
        Meta(max_length=5, description="Addresses the customer should add to their contacts"),
    ] = msgspec.field(default_factory=list)
    signature: Template | None = None
    messages: Annotated[
        dict[Annotated[str, Meta(max_length=81)], Template],
        Meta(
            max_length=40,
            description="Status key (sent, bounced:mailbox_full, rejected:typo, no_record, …)"
            " -> the customer message template that replaces the shipped one",
        ),
    ] = msgspec.field(default_factory=dict)

    sentences: ClassVar[dict[str, str]] = {
        "company_name": f"company_name must be one line of at most {MAX_DETAIL} characters",
        "support_channel": (f"support_channel must be one line of at most {MAX_DETAIL} characters"),
        "sender_addresses": "sender_addresses must be a list of at most 5 addresses",
        "messages": "messages must map status keys (sent, bounced:mailbox_full, …) to"
        f" templates of at most {MAX_TEMPLATE} characters",
    }


class TenantTextSet(rm.Model):
    company_name: str
    support_channel: str
    sender_addresses: list[str]
    signature: Annotated[str | None, Meta(description="null: the shipped signature")]
    messages: dict[str, str]


class TenantTexts(rm.Model):
    """A tenant's texts per language (a language not listed uses the shipped texts)."""

    tenant: str
    texts: dict[str, TenantTextSet]


def _as_set(stored: dict[str, str]) -> TenantTextSet:
    senders = [s.strip() for s in stored.get("sender_addresses", "").split(",") if s.strip()]
    return TenantTextSet(
        company_name=stored.get("company_name", ""),
        support_channel=stored.get("support_channel", ""),
        sender_addresses=senders,
        signature=stored.get("signature"),
        messages={k[len(MESSAGE) :]: v for k, v in stored.items() if k.startswith(MESSAGE)},
    )


async def _visible_tenant(request: Request) -> str:
    name: str = request.path_params["name"]
    message = f"No tenant {name}"
    scope.ensure_visible(request, name, message)
    if await deps_of(request).store.get_tenant(name) is None:
        raise not_found(message)
    return name


@json_route("A tenant's details for the customer messages", TenantTexts, errors=(404,))
@scope.tenant_aware
async def get_texts(request: Request) -> TenantTexts:
    name = await _visible_tenant(request)
    stored = await deps_of(request).store.tenant_texts(name)
    return TenantTexts(tenant=name, texts={lang: _as_set(t) for lang, t in stored.items()})


@json_route(
    "Set a tenant's details and message templates in one language (validated; audited)",
    TenantTexts,
    body=TenantTextsBody,
    errors=(404, 422),
)
@scope.tenant_aware
async def put_texts(request: Request) -> TenantTexts:
    name = await _visible_tenant(request)
    lang = request.path_params["lang"]
    if lang not in LANGS:  # a path that names no language: as a path that names no tenant
        raise not_found(f"No texts language {lang}: they are kept for {', '.join(LANGS)}")
    body = await params.body_of(request, TenantTextsBody)
    senders = [params.valid_address(a, "sender_addresses") for a in body.sender_addresses]
    values = {
        "company_name": body.company_name,
        "support_channel": body.support_channel,
        "sender_addresses": ", ".join(senders),
    }
    values = {k: v for k, v in values.items() if v.strip()}
    if body.signature is not None:
        values["signature"] = body.signature
    values |= {MESSAGE + key: text for key, text in body.messages.items()}
    try:
        checked = check_texts(values)
    except TemplateError as exc:
        raise ApiError(422, "invalid_template", str(exc)) from None
    deps = deps_of(request)
    now = deps.clock.now()
    actor = principal_of(request).actor
    await deps.store.set_tenant_texts(
        name,
        lang,
        checked,
        now,
        audit=lambda n: AuditEntry(
            now, actor, "tenant.texts", name, {"lang": lang, "keys": sorted(checked), "count": n}
        ),
    )
    stored = await deps.store.tenant_texts(name)
    return TenantTexts(tenant=name, texts={k: _as_set(t) for k, t in stored.items()})


# --- applying them -------------------------------------------------------------------------


class Report(Protocol):
    """What :func:`with_tenant_words` reads of a report (``admin.views.RecipientReport``,
    named by its shape: that module calls this one)."""

    address: str
    tenant: str | None
    lang: rm.Lang
    status: Status
    category: Category | None
    reason: Reason | None
    guidance: Guidance
    rejection: Event | None
    recipient: RecipientView | None

    @property
    def suppression(self) -> Suppression | None: ...

    @property
    def typo_suggestion(self) -> str | None: ...


R = TypeVar("R", bound=Report)


async def words_for(store: Store, tenant: str | None, lang: str) -> TenantWords | None:
    """The tenant's texts in ``lang`` (``None`` without a tenant or texts)."""
    if tenant is None:
        return None
    texts = (await store.tenant_texts(tenant)).get(lang)
    return TenantWords(texts) if texts else None


def report_tenant(report: Report) -> str | None:
    """The tenant whose texts a report's message uses: the one searched in, else the one of
    what decided the status (the suppression, the refusal, the recipient row)."""
    if report.tenant is not None:
        return report.tenant
    if report.suppression is not None:
        return report.suppression.tenant
    for found in (report.rejection, report.recipient):
        if found is not None:
            return found.tenant
    return None


async def with_tenant_words(store: Store, report: R) -> R:
    """``report`` with its customer message filled with its tenant's details (unchanged
    for a tenant without texts: the shipped message as before)."""
    words = await words_for(store, report_tenant(report), report.lang)
    if words is None:
        return report
    suggestion = report.typo_suggestion
    if suggestion is None and report.rejection is not None:
        suggestion = report.rejection.details.get("suggestion") or None
    message = customer_message(
        report.guidance.customer_message,
        text_keys(report.status, report.category, report.reason),
        report.lang,
        words,
        address=report.address,
        suggestion=suggestion,
    )
    report.guidance = replace(report.guidance, customer_message=message)
    return report
