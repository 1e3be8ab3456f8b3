"""What the API and the page show about a recipient: the report and the JSON shapes.

Owns: deciding an address's current status from its suppressions, its intake refusals
and its recipient rows; the plain-words guidance for it; filling the response models
(``admin.response_models``) of events, suppressions, messages and tenants. Does not own:
the texts (``core.status_text``), the queries (``store``) or HTTP (``admin.api``,
``admin.pages``).

The current status of an address, in order: an active suppression wins (whatever the
rows say, the next message will be refused); else the newer of the last intake refusal
and the last recipient row. A ``possible_typo`` warning (the domain looks like a misspelt
popular one, yet the address was accepted) is shown beside the status, never as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.admin import response_models as rm
from gateway.admin.customer_texts import with_tenant_words
from gateway.admin.held import held_fields
from gateway.core.model import Category, Event, EventType, Reason, Status, Suppression
from gateway.core.status_text import Guidance, folded_label, guidance
from gateway.core.streams import Probation, Scope, duration_text

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gateway.core.ports import RecipientView, Store
    from gateway.core.records import MessageRow, TenantSettings

EVENTS_SHOWN = 20
#: The challenge-response providers' names as support says them (``provider_hint`` keys).
PROVIDER_NAMES = {"uol": "UOL", "bol": "BOL", "terra": "Terra"}
#: The events that are delivery attempts (a message's ``attempts_detail``).
ATTEMPTS = frozenset({EventType.SENT, EventType.DEFERRED, EventType.BOUNCED})


def normalise_lang(lang: str | None) -> rm.Lang:
    """``"en"`` for any English tag, else ``"pt-BR"`` (the default)."""
    tag = (lang or "").strip().lower()
    return "en" if tag == "en" or tag.startswith(("en-", "en_")) else "pt-BR"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def reply_text(event: Event) -> str:
    if event.reply_code is None:
        return event.text
    return " ".join(p for p in (str(event.reply_code), event.enhanced or "", event.text) if p)


def event_model(event: Event, lang: str = "pt-BR") -> rm.Event:
    return rm.Event(
        id=event.event_id,
        at=event.at.isoformat(),
        type=event.type,
        tenant=event.tenant,
        address=event.address,
        category=event.category,
        category_label=folded_label(event.category, lang) or None,
        reply=reply_text(event),
        reply_code=event.reply_code,
        enhanced=event.enhanced,
        remote_host=event.remote_host,
        queue_id=event.queue_id,
        recipient_id=event.recipient_id,
        reason=event.reason,
        # The address a typo refusal or a ``possible_typo`` warning suggested.
        suggestion=event.details.get("suggestion"),
    )


def possible_typo_model(event: Event | None) -> rm.PossibleTypo | None:
    """A ``possible_typo`` warning as the API shows it, or ``None``."""
    if event is None:
        return None
    return rm.PossibleTypo(
        suggestion=event.details.get("suggestion"),
        at=event.at.isoformat(),
        event_id=event.event_id,
        queue_id=event.queue_id,
    )


def suppression_model(s: Suppression, cause: Event | None = None) -> rm.Suppression:
    return rm.Suppression(
        tenant=s.tenant,
        address=s.address,
        hashed=s.address.startswith("sha256:"),
        reason=s.reason,
        since=s.since.isoformat(),
        expires=iso(s.expires_at),
        event_id=s.event_id,
        note=s.note,
        cause=None if cause is None else event_model(cause),
        scope=s.scope,
    )


def probation_model(p: Probation | None) -> rm.Probation | None:
    if p is None:
        return None
    return rm.Probation(
        tenant=p.tenant,
        since=p.since.isoformat(),
        probation_until=p.until.isoformat(),
        unblock_event_id=p.unblock_event_id,
        success_at=iso(p.success_at),
    )


def recipient_row_model(view: RecipientView, events: Iterable[Event] = ()) -> rm.RecipientRow:
    return rm.RecipientRow(**_row_fields(view), **held_fields(view, events))


def _row_fields(view: RecipientView) -> dict[str, Any]:
    return {
        "recipient_id": view.recipient_id,
        "queue_id": view.queue_id,
        "tenant": view.tenant,
        "address": view.address,
        "status": view.status,
        "category": view.category,
        "attempts": view.attempts,
        "due_at": iso(view.due_at),
        "updated_at": view.updated_at.isoformat(),
        "last_reply": view.last_reply,
    }


def recipient_detail_model(view: RecipientView, events: list[Event]) -> rm.RecipientDetail:
    """A message's recipient with its events, the delivery attempts also on their own."""
    return rm.RecipientDetail(
        **_row_fields(view),
        **held_fields(view, events),
        attempts_detail=[event_model(e) for e in events if e.type in ATTEMPTS],
        events=[event_model(e) for e in events],
    )


def envelope_fields(row: MessageRow) -> dict[str, Any]:
    """The fields of ``response_models.Envelope`` for a message row."""
    return {
        "queue_id": row.queue_id,
        "tenant": row.tenant,
        "mail_from": row.mail_from,
        "message_id": row.message_id,
        "subject": row.subject,
        "size": row.size,
        "received_at": row.received_at.isoformat(),
        "client_address": row.client_address,
        "held": row.held,
        "content_kept": row.has_content,
        "stream": row.stream,
    }


def tenant_model(s: TenantSettings) -> rm.Tenant:
    t = s.tenant
    return rm.Tenant(
        name=t.name,
        allowed_sender_domains=list(t.allowed_sender_domains),
        hourly_quota=t.hourly_quota,
        daily_quota=t.daily_quota,
        list_unsubscribe=s.list_unsubscribe,
        bounce_notice=s.bounce_notice,
        webhook_url=s.webhook_url,
        webhook_secret_set=bool(s.webhook_secret),
        failure_threshold=s.failure_threshold,
        failure_window_seconds=(
            None if s.failure_window is None else s.failure_window.total_seconds()
        ),
        usernames=list(s.usernames),
        probation=duration_text(s.streams.probation),
        default_stream=s.streams.default_stream,
        complaint_scope=s.streams.complaint_scope,
        login_streams={login: stream.value for login, stream in s.streams.logins},
    )


@dataclass(slots=True)
class RecipientReport:
    """Everything support needs about one address."""

    address: str
    tenant: str | None
    lang: rm.Lang
    status: Status
    category: Category | None
    reason: Reason | None
    since: datetime
    guidance: Guidance
    recipient: RecipientView | None
    rejection: Event | None
    suppressions: list[Suppression]
    causes: dict[int, Event] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    possible_typo: Event | None = None
    probation: Probation | None = None
    #: With status ``provider_hold``: the challenge report that put it there (issue 12).
    provider_hold: Event | None = None

    @property
    def suppression(self) -> Suppression | None:
        return self.suppressions[0] if self.suppressions else None

    @property
    def typo_suggestion(self) -> str | None:
        """The address the last ``possible_typo`` warning suggested, if any."""
        if self.possible_typo is None:
            return None
        return self.possible_typo.details.get("suggestion") or None

    def as_model(self) -> rm.RecipientReport:
        active = self.suppression
        return rm.RecipientReport(
            address=self.address,
            tenant=self.tenant,
            status=self.status,
            category=self.category,
            category_label=folded_label(self.category, self.lang) or None,
            reason=self.reason,
            since=self.since.isoformat(),
            guidance=rm.Guidance(
                lang=self.lang,
                title=self.guidance.title,
                what_to_do=self.guidance.what_to_do,
                customer_message=self.guidance.customer_message,
            ),
            recipient=None
            if self.recipient is None
            else recipient_row_model(self.recipient, self.events),
            rejection=None if self.rejection is None else event_model(self.rejection, self.lang),
            suppression=None
            if active is None
            else suppression_model(active, self.causes.get(active.event_id or -1)),
            suppressions=[
                suppression_model(s, self.causes.get(s.event_id or -1)) for s in self.suppressions
            ],
            events=[event_model(e, self.lang) for e in self.events],
            possible_typo=possible_typo_model(self.possible_typo),
            probation=probation_model(self.probation),
            probation_until=None if self.probation is None else iso(self.probation.until),
            provider_hold=self.provider_hold_model(),
        )

    def provider_hold_model(self) -> rm.ProviderHold | None:
        """The provider, its challenge link and what to do, for status ``provider_hold``."""
        event = self.provider_hold
        if event is None:
            return None
        provider = event.details.get("provider_hint") or ""
        return rm.ProviderHold(
            provider=provider,
            provider_name=PROVIDER_NAMES.get(provider, provider.upper()),
            challenge_url=event.details.get("challenge_url") or None,
            what_to_do=self.guidance.what_to_do,
            since=event.at.isoformat(),
        )


async def recipient_report(
    store: Store, address: str, tenant: str | None, lang: rm.Lang, now: datetime
) -> RecipientReport | None:
    """Build the report for an address, or ``None`` when the gateway has no record of it.

    Args:
        store: the store.
        address: the canonical address (or the raw text for one that never parsed).
        tenant: one tenant, or ``None`` for every tenant.
        lang: ``"pt-BR"`` or ``"en"``.
        now: suppressions that expired before ``now`` are not shown.
    """
    suppressions = await store.active_suppressions(address, tenant, now)
    # Newest first; one that stops invoices (all, transactional) before a marketing opt-out.
    suppressions.sort(key=lambda s: s.since, reverse=True)
    suppressions.sort(key=lambda s: s.scope is Scope.MARKETING)
    probations = await store.probations(address, tenant, now)
    row = await store.latest_recipient(address, tenant)
    rejection = await store.latest_rejection(address, tenant)
    possible_typo = await store.latest_event(address, tenant, EventType.POSSIBLE_TYPO)
    events = await store.events_for(address, tenant, EVENTS_SHOWN)
    causes: dict[int, Event] = {}
    for s in suppressions:
        if s.event_id is not None and s.event_id not in causes:
            found = await store.event_by_id(s.event_id)
            if found is not None:
                causes[s.event_id] = found
    category: Category | None = None
    reason: Reason | None = None
    suggestion: str | None = None
    # A marketing opt-out alone leaves the invoices flowing (issue 15): the address's status
    # is then its last recipient's, when there is one.
    marketing_only = bool(suppressions) and suppressions[0].scope is Scope.MARKETING
    if suppressions and (not marketing_only or (row is None and rejection is None)):
        status, reason, since = (
            Status.SUPPRESSED,
            suppressions[0].reason.reason,
            suppressions[0].since,
        )
        cause = causes.get(suppressions[0].event_id or -1)
        category = cause.category if cause else None
    elif rejection is not None and (row is None or rejection.at >= row.updated_at):
        # The refusal's typed reason as the intake stored it (migration 007 gave the rows of
        # older gateways theirs): never worked out from the reply's words.
        status, reason, since = Status.REJECTED, rejection.reason, rejection.at
        suggestion = rejection.details.get("suggestion") or None
    elif row is not None:
        status, category, since = row.status, row.category, row.updated_at
    else:
        return None
    held_by = None
    if status is Status.PROVIDER_HOLD:
        held_by = next((e for e in events if e.reason == Reason.PROVIDER_CHALLENGE), None)
    report = RecipientReport(
        address=address,
        tenant=tenant,
        lang=lang,
        status=status,
        category=category,
        reason=reason,
        since=since,
        guidance=guidance(status, category, reason, lang, suggestion),
        recipient=row,
        rejection=rejection,
        suppressions=suppressions,
        causes=causes,
        events=events,
        possible_typo=possible_typo,
        probation=probations[0] if probations else None,
        provider_hold=held_by,
    )
    # The customer message with the tenant's own details, when it set any (issue 16 item 3).
    return await with_tenant_words(store, report)
