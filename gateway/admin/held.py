"""Why a recipient is ``held``, for the API and the page (issue 15 items 2 and 4).

Owns: reading a held recipient's reason and the end of its hold window back from its
``held`` event — ``suppressed`` (kept for a blocked address, sent if unblocked before
``held_until``) or ``held_by_admin`` (an administrator held the message); the page's words for
it and for the tenant pause (Portuguese first). Does not own: the
hold itself (``services.holds``) or the response models (``admin.response_models``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from gateway.admin.texts import page_text
from gateway.core.model import Event, EventType, Reason, Status
from gateway.core.records import RecipientView

if TYPE_CHECKING:
    from collections.abc import Sequence


class RecipientReport(Protocol):
    """What :func:`held_view` reads of ``admin.views.RecipientReport`` (not imported: views
    imports this module)."""

    @property
    def recipient(self) -> RecipientView | None: ...

    @property
    def events(self) -> Sequence[Event]: ...


def held_event(view: RecipientView, events: Iterable[Event]) -> Event | None:
    """The event that made ``view`` ``held`` (the last ``held`` one), if it is held."""
    if view.status is not Status.HELD:
        return None
    found = None
    for event in events:
        if event.type is not EventType.HELD or event.recipient_id != view.recipient_id:
            continue
        if found is None or (event.at, event.event_id or 0) >= (found.at, found.event_id or 0):
            found = event
    return found


def held_fields(view: RecipientView, events: Iterable[Event]) -> dict[str, Any]:
    """``reason`` and ``held_until`` of ``RecipientRow`` for ``view`` (both ``None`` unless it
    is held; ``held_until`` only for a suppressed address's hold)."""
    event = held_event(view, events)
    if event is None:
        return {"reason": None, "held_until": None}
    until = event.details.get("held_until") if event.reason is Reason.SUPPRESSED else None
    return {"reason": event.reason, "held_until": until}


def held_until(view: RecipientView, events: Iterable[Event]) -> datetime | None:
    """The end of a suppressed address's hold window, for the page."""
    found = held_fields(view, events)["held_until"]
    return None if found is None else datetime.fromisoformat(found)


_PT = {
    "held_title": "Mensagem retida",
    "held_blocked": (
        "Retida: endereço bloqueado por {reason} desde {since}; será enviada se for"
        " desbloqueado antes de {until}."
    ),
    "held_admin": "Retida por um administrador (fila pausada para esta mensagem).",
    "tenants": "Clientes (tenants)",
    "state": "Situação",
    "running": "Enviando",
    "paused": "Pausado para revisão",
    "paused_since": "desde",
    "cause_bounce_rate": "taxa de devolução acima do limite",
    "cause_complaint_rate": "taxa de reclamações acima do limite",
    "cause_manual": "pausa manual",
    "pause": "Pausar",
    "resume": "Retomar envio",
    "pause_note": "Nota (motivo, nº do chamado)",
    "thresholds": "Pausa automática: devoluções > {bounce}, reclamações > {complaint}, com ao"
    " menos {minimum} mensagens em {window}",
    "delivery_too": "a fila também para",
    "delivery_not": "a fila continua sendo entregue",
}
_EN = {
    "held_title": "Message held",
    "held_blocked": (
        "Held: address blocked for {reason} since {since}; it will be sent if unblocked"
        " before {until}."
    ),
    "held_admin": "Held by an administrator (this message's queue is paused).",
    "tenants": "Tenants",
    "state": "State",
    "running": "Sending",
    "paused": "Paused for review",
    "paused_since": "since",
    "cause_bounce_rate": "bounce rate over the threshold",
    "cause_complaint_rate": "complaint rate over the threshold",
    "cause_manual": "paused by hand",
    "pause": "Pause",
    "resume": "Resume sending",
    "pause_note": "Note (why, ticket number)",
    "thresholds": "Automatic pause: bounces > {bounce}, complaints > {complaint}, with at"
    " least {minimum} messages in {window}",
    "delivery_too": "the queue stops too",
    "delivery_not": "the queue is still delivered",
}


def policy_text(lang: str) -> dict[str, str]:
    return _EN if lang == "en" else _PT


def when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def held_view(r: RecipientReport, lang: str) -> dict[str, str] | None:
    """What the report says of its latest recipient when it is held, or ``None``."""
    if r.recipient is None:
        return None
    event = held_event(r.recipient, r.events)
    if event is None:
        return None
    p = policy_text(lang)
    if event.reason is not Reason.SUPPRESSED:
        return {"title": p["held_title"], "text": p["held_admin"], "reason": event.reason.value}
    why = event.details.get("suppression_reason", "")
    label = page_text(lang).get(f"supp_{why}", why)
    since = event.details.get("suppressed_since", "")
    until = event.details.get("held_until", "")
    text = p["held_blocked"].format(
        reason=label,
        since=when(datetime.fromisoformat(since)) if since else "?",
        until=when(datetime.fromisoformat(until)) if until else "?",
    )
    return {"title": p["held_title"], "text": text, "reason": event.reason.value, "until": until}
