"""Why a recipient is ``held``, for the API and the page (issue 15 item 2).

Owns: reading a held recipient's reason and the end of its hold window back from its
``held`` event — ``suppressed`` (kept for a blocked address, sent if unblocked before
``held_until``) or ``held_by_admin`` (an administrator held the message). Does not own: the
hold itself (``services.holds``) or the response models (``admin.response_models``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from gateway.core.model import Event, EventType, Reason, Status
from gateway.core.records import RecipientView


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
