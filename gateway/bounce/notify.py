"""Provider JSON notifications delivered by mail: Amazon SES event notifications over SNS.

Owns: reading the JSON body of an SES notification e-mail (``notificationType`` Bounce,
Complaint or Delivery, optionally inside an SNS envelope) into per-recipient facts. Does not
own: classification (``classify``) — the diagnostic codes found here go through the same rules
as every other report.
"""

from __future__ import annotations

from gateway.bounce.cache import regex
from gateway.bounce.decode import collapse_ws
from gateway.bounce.records import Record

MAX_JSON = 256 * 1024
# SNS e-mail delivery wraps long lines as "!" CRLF SP; undo it before decoding.
_SNS_WRAP = regex(r"!\r?\n ")
_MAX_RECIPIENTS = 500


class Notice(Record):
    """One recipient in a provider notification."""

    _FIELDS = (
        "kind",
        "recipient",
        "action",
        "status",
        "diagnostic",
        "remote_mta",
        "feedback_type",
        "transient",
    )
    __slots__ = _FIELDS

    kind: str  # "bounce", "complaint" or "delivery"
    recipient: str | None
    action: str | None
    status: str | None
    diagnostic: str
    remote_mta: str | None
    feedback_type: str | None
    transient: bool

    def __init__(
        self,
        kind: str,
        recipient: str | None,
        action: str | None = None,
        status: str | None = None,
        diagnostic: str = "",
        remote_mta: str | None = None,
        feedback_type: str | None = None,
        transient: bool = False,
    ) -> None:
        self.kind = kind
        self.recipient = recipient
        self.action = action
        self.status = status
        self.diagnostic = diagnostic
        self.remote_mta = remote_mta
        self.feedback_type = feedback_type
        self.transient = transient


def looks_like(text: str) -> bool:
    """Return True when ``text`` starts like an SES/SNS JSON notification.

    Args:
        text: the decoded body.
    """
    head = text.lstrip()[:200]
    return head.startswith("{") and ('"notificationType"' in head or '"Type"' in head)


def parse(text: str) -> list[Notice]:
    """Read an SES notification; ``[]`` when the JSON is broken or of another kind.

    Args:
        text: the decoded body.
    """
    data = _load(_SNS_WRAP.sub("", text.lstrip()[:MAX_JSON]))
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        data = _load(data["Message"])  # SNS envelope around the SES event
    if not isinstance(data, dict):
        return []
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    if kind == "bounce":
        return _bounces(_dict(data.get("bounce")))
    if kind == "complaint":
        return _complaints(_dict(data.get("complaint")))
    if kind == "delivery":
        return _deliveries(_dict(data.get("delivery")))
    return []


def _bounces(bounce: dict[str, object]) -> list[Notice]:
    transient = str(bounce.get("bounceType", "")).lower() == "transient"
    subtype = str(bounce.get("bounceSubType", ""))
    mta = str(bounce.get("reportingMTA", "")).partition(";")[2].strip() or None
    out = []
    for item in _list(bounce.get("bouncedRecipients"))[:_MAX_RECIPIENTS]:
        rec = _dict(item)
        diag = str(rec.get("diagnosticCode", ""))
        diag = diag.partition(";")[2] if ";" in diag[:12] else diag
        if not diag.strip() and subtype and subtype.lower() != "general":
            diag = f"ses bounce subtype {subtype}"
        out.append(
            Notice(
                kind="bounce",
                recipient=_addr(rec.get("emailAddress")),
                action=str(rec.get("action", "")) or None,
                status=str(rec.get("status", "")) or None,
                diagnostic=collapse_ws(diag),
                remote_mta=mta,
                transient=transient,
            )
        )
    return out


def _complaints(complaint: dict[str, object]) -> list[Notice]:
    ftype = str(complaint.get("complaintFeedbackType", "") or "abuse").lower()
    return [
        Notice(
            kind="complaint", recipient=_addr(_dict(item).get("emailAddress")), feedback_type=ftype
        )
        for item in _list(complaint.get("complainedRecipients"))[:_MAX_RECIPIENTS]
    ]


def _deliveries(delivery: dict[str, object]) -> list[Notice]:
    response = collapse_ws(str(delivery.get("smtpResponse", "")))
    mta = str(delivery.get("remoteMtaIp", "")) or None
    return [
        Notice(
            kind="delivery",
            recipient=_addr(item),
            action="delivered",
            status="2.0.0",
            diagnostic=response,
            remote_mta=mta,
        )
        for item in _list(delivery.get("recipients"))[:_MAX_RECIPIENTS]
    ]


def _load(text: str) -> object:
    start = text.find("{")
    if start < 0:
        return None
    import json  # here: most messages are no notification (start-up time, issue 12 item 5)

    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except (ValueError, RecursionError):
        return None
    return value


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _addr(value: object) -> str | None:
    if not isinstance(value, str) or "@" not in value:
        return None
    if "<" in value and ">" in value:
        value = value[value.rindex("<") + 1 : value.rindex(">")]
    return value.strip().lower() or None
