"""What the API and the page show about a recipient: the report and the JSON shapes.

Owns: deciding an address's current status from its suppressions, its intake refusals
and its recipient rows; the plain-words guidance for it; the JSON form of events,
suppressions, messages and tenants. Does not own: the texts (``core.status_text``), the
queries (``store``) or HTTP (``admin.api``, ``admin.pages``).

The current status of an address, in order: an active suppression wins (whatever the
rows say, the next message will be refused); else the newer of the last intake refusal
and the last recipient row. A ``possible_typo`` warning (the domain looks like a misspelt
popular one, yet the address was accepted) is shown beside the status, never as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.core.model import Category, Event, EventType, Reason, Status, Suppression
from gateway.core.status_text import Guidance, folded_label, guidance

if TYPE_CHECKING:
    from gateway.core.ports import RecipientView
    from gateway.store.sqlite import SqliteStore
    from gateway.store.sqlite_admin import MessageRow, TenantSettings

EVENTS_SHOWN = 20


def normalise_lang(lang: str | None) -> str:
    """``"en"`` for any English tag, else ``"pt-BR"`` (the default)."""
    tag = (lang or "").strip().lower()
    return "en" if tag == "en" or tag.startswith(("en-", "en_")) else "pt-BR"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def reply_text(event: Event) -> str:
    if event.reply_code is None:
        return event.text
    return " ".join(p for p in (str(event.reply_code), event.enhanced or "", event.text) if p)


def event_json(event: Event, lang: str = "pt-BR") -> dict[str, Any]:
    return {
        "id": event.event_id,
        "at": iso(event.at),
        "type": event.type.value,
        "tenant": event.tenant,
        "address": event.address,
        "category": event.category.value if event.category else None,
        "category_label": folded_label(event.category, lang) or None,
        "reply": reply_text(event),
        "reply_code": event.reply_code,
        "enhanced": event.enhanced,
        "remote_host": event.remote_host,
        "queue_id": event.queue_id,
        "recipient_id": event.recipient_id,
        "reason": str(event.reason),
        # The address a typo refusal or a ``possible_typo`` warning suggested.
        "suggestion": event.details.get("suggestion"),
    }


def possible_typo_json(event: Event | None) -> dict[str, Any] | None:
    """A ``possible_typo`` warning as the API shows it, or ``None``."""
    if event is None:
        return None
    return {
        "suggestion": event.details.get("suggestion"),
        "at": iso(event.at),
        "event_id": event.event_id,
        "queue_id": event.queue_id,
    }


def suppression_json(s: Suppression, cause: Event | None = None) -> dict[str, Any]:
    return {
        "tenant": s.tenant,
        "address": s.address,
        "hashed": s.address.startswith("sha256:"),
        "reason": s.reason.value,
        "since": iso(s.since),
        "expires": iso(s.expires_at),
        "event_id": s.event_id,
        "note": s.note,
        "cause": None if cause is None else event_json(cause),
    }


def guidance_json(g: Guidance, lang: str) -> dict[str, str]:
    return {
        "lang": lang,
        "title": g.title,
        "what_to_do": g.what_to_do,
        "customer_message": g.customer_message,
    }


def recipient_view_json(view: RecipientView) -> dict[str, Any]:
    return {
        "recipient_id": view.recipient_id,
        "queue_id": view.queue_id,
        "tenant": view.tenant,
        "address": view.address,
        "status": view.status.value,
        "category": view.category.value if view.category else None,
        "attempts": view.attempts,
        "due_at": iso(view.due_at),
        "updated_at": iso(view.updated_at),
        "last_reply": view.last_reply,
    }


def message_json(row: MessageRow) -> dict[str, Any]:
    return {
        "queue_id": row.queue_id,
        "tenant": row.tenant,
        "mail_from": row.mail_from,
        "message_id": row.message_id,
        "subject": row.subject,
        "size": row.size,
        "received_at": iso(row.received_at),
        "client_address": row.client_address,
        "held": row.held,
        "content_kept": row.has_content,
    }


def tenant_json(s: TenantSettings) -> dict[str, Any]:
    t = s.tenant
    return {
        "name": t.name,
        "allowed_sender_domains": list(t.allowed_sender_domains),
        "hourly_quota": t.hourly_quota,
        "daily_quota": t.daily_quota,
        "list_unsubscribe": s.list_unsubscribe,
        "bounce_notice": s.bounce_notice,
        "webhook_url": s.webhook_url,
        "webhook_secret_set": bool(s.webhook_secret),
        "failure_threshold": s.failure_threshold,
        "failure_window_seconds": (
            None if s.failure_window is None else s.failure_window.total_seconds()
        ),
        "usernames": list(s.usernames),
    }


@dataclass(slots=True)
class RecipientReport:
    """Everything support needs about one address."""

    address: str
    tenant: str | None
    lang: str
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

    @property
    def suppression(self) -> Suppression | None:
        return self.suppressions[0] if self.suppressions else None

    @property
    def typo_suggestion(self) -> str | None:
        """The address the last ``possible_typo`` warning suggested, if any."""
        if self.possible_typo is None:
            return None
        return self.possible_typo.details.get("suggestion") or None

    def as_json(self) -> dict[str, Any]:
        active = self.suppression
        return {
            "address": self.address,
            "tenant": self.tenant,
            "status": self.status.value,
            "category": self.category.value if self.category else None,
            "category_label": folded_label(self.category, self.lang) or None,
            "reason": None if self.reason is None else str(self.reason),
            "since": iso(self.since),
            "guidance": guidance_json(self.guidance, self.lang),
            "recipient": None if self.recipient is None else recipient_view_json(self.recipient),
            "rejection": None if self.rejection is None else event_json(self.rejection, self.lang),
            "suppression": None
            if active is None
            else suppression_json(active, self.causes.get(active.event_id or -1)),
            "suppressions": [
                suppression_json(s, self.causes.get(s.event_id or -1)) for s in self.suppressions
            ],
            "events": [event_json(e, self.lang) for e in self.events],
            "possible_typo": possible_typo_json(self.possible_typo),
        }


async def recipient_report(
    store: SqliteStore, address: str, tenant: str | None, lang: str, now: datetime
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
    suppressions.sort(key=lambda s: s.since, reverse=True)
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
    if suppressions:
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
    return RecipientReport(
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
    )
