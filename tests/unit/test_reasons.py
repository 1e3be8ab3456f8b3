"""``core.model.Reason``: one typed vocabulary for every event and suppression.

Suppression reasons, report kinds and the lifecycle's reasons are all members; the webhook
payload carries the stored reason; and no module of the gateway works a reason out from the
words of a reply (migration 007 did that once, for old rows, in SQL).
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

import gateway
from gateway.bounce.report import KINDS
from gateway.core import replies
from gateway.core.lifecycle import Attempt, Report, Result, Suppressed, effect
from gateway.core.model import (
    INTAKE_REASONS,
    Category,
    Event,
    EventType,
    Reason,
    SuppressionReason,
)
from gateway.observe.events import RecipientChanged
from gateway.observe.webhooks import payload

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
GATEWAY = Path(gateway.__file__).parent


def test_every_suppression_reason_is_a_reason() -> None:
    for s in SuppressionReason:
        assert s.reason is Reason(s.value)
        assert s.reason.value == s.value


def test_every_report_kind_has_its_own_reason() -> None:
    for kind in KINDS:
        assert Reason.of_report(kind).value == f"report_{kind}"
        assert Reason.of_report(kind) is not Reason.REPORT_OTHER
    assert Reason.of_report("carrier_pigeon") is Reason.REPORT_OTHER


@pytest.mark.parametrize(
    "cause",
    [
        *(Attempt(r, Category.MAILBOX_FULL, expired) for r in Result for expired in (False, True)),
        *(Report(kind, Category.NONEXISTENT_ADDRESS) for kind in KINDS),
        *(Suppressed(s) for s in SuppressionReason),
    ],
)
def test_every_effect_has_a_typed_reason(cause: Attempt | Report | Suppressed) -> None:
    assert isinstance(effect(None, cause).reason, Reason)


@pytest.mark.parametrize("reason", INTAKE_REASONS)
def test_the_webhook_of_a_refusal_carries_its_reason(reason: Reason) -> None:
    reply = replies.Reply(550, "5.0.0", "reworded: no word of the catalogue")
    event = Event(
        None,
        "acme",
        "ana@example.com",
        EventType.REJECTED,
        T0,
        reply_code=reply.code,
        enhanced=reply.enhanced,
        text=reply.text,
        reason=reason,
        event_id=7,
    )
    body = payload(RecipientChanged(event), "id-7")
    assert (body["type"], body["status"], body["reason"]) == ("rejected", "rejected", reason.value)


def test_an_opt_out_webhook_is_told_by_its_reason() -> None:
    event = Event(None, "acme", "a@example.com", EventType.SUPPRESSED, T0, reason=Reason.OPT_OUT)
    body = payload(RecipientChanged(event), "id")
    assert (body["type"], body["reason"]) == ("opt_out", "opt_out")
    manual = Event(None, "acme", "a@example.com", EventType.SUPPRESSED, T0, reason=Reason.MANUAL)
    assert payload(RecipientChanged(manual), "id")["type"] == "suppressed"


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in sorted(GATEWAY.rglob("*.py"))]


def test_no_module_stores_or_reads_the_untyped_refusal_reason() -> None:
    found = [str(p) for p, text in _sources() if "intake_refused" in text]
    assert found == []


def test_the_views_do_not_consult_the_reply_catalogue() -> None:
    """The old support page found a refusal's reason by matching its reply against
    ``core.replies`` ("misspelt", "quota", "too many"); what the API and the page show about
    a recipient now reads no reply. (Behaviour: ``tests/admin/test_admin_refusal_reasons``.)"""
    for module in ("admin/views.py", "core/status_text.py", "observe/webhooks.py"):
        tree = ast.parse((GATEWAY / module).read_text(encoding="utf-8"))
        imported = {
            *(n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)),
            *(
                f"{n.module}.{a.name}"
                for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom)
                for a in n.names
            ),
        }
        assert "gateway.core.replies" not in imported, module


def test_every_event_the_gateway_builds_names_its_reason() -> None:
    """``Event.reason`` defaults to ``legacy_unknown`` (for rows of older gateways and for
    tests): no module of the gateway may rely on that default."""
    missing = []
    for path, source in _sources():
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Event"
                and "reason" not in {k.arg for k in node.keywords}
            ):
                missing.append(f"{path.relative_to(GATEWAY)}:{node.lineno}")
    assert missing == []
